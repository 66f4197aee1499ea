"""Reading the stored hierarchy back: a terminal tree and JSON for scripts.

WordNet is a DAG, so a synset with two stored parents appears under both; its
subtree is printed once and later occurrences point back to it.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.db.models import Query, Synset, SynsetEdge
from synset_builder.errors import NotFound

SHOWN_COUNTS = ("candidates", "clean", "accepted")


@dataclass(frozen=True)
class Graph:
    synsets: dict[int, Synset]
    children: dict[int, list[int]]
    parents: dict[int, list[int]]

    @property
    def roots(self) -> list[int]:
        return sorted(
            (i for i in self.synsets if not self.parents.get(i)),
            key=lambda i: self.synsets[i].wnid,
        )

    def depths(self) -> dict[int, int]:
        """Shortest distance from a root (entity.n.01 for WordNet)."""
        depth = {r: 0 for r in self.roots}
        queue = deque(self.roots)
        while queue:
            node = queue.popleft()
            for child in self.children.get(node, []):
                if child not in depth:
                    depth[child] = depth[node] + 1
                    queue.append(child)
        return depth

    def below(self, start: int) -> list[int]:
        seen, stack = {start}, [start]
        while stack:
            for child in self.children.get(stack.pop(), []):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return sorted(seen, key=lambda i: self.synsets[i].wnid)


def load_graph(session: Session) -> Graph:
    synsets = {s.id: s for s in session.scalars(select(Synset))}
    children: dict[int, list[int]] = defaultdict(list)
    parents: dict[int, list[int]] = defaultdict(list)
    for parent, child in session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id)):
        children[parent].append(child)
        parents[child].append(parent)
    for kids in children.values():
        kids.sort(key=lambda i: synsets[i].wnid)
    return Graph(synsets, dict(children), dict(parents))


def _counts(session: Session) -> dict[str, dict[int, int]]:
    """The kept counters (synset_builder/tally.py): one row per synset, however big."""
    kept = tally.read(session)
    return {name: {sid: t.counts[name] for sid, t in kept.items()} for name in SHOWN_COUNTS}


def _find(graph: Graph, wnid: str) -> int:
    for i, s in graph.synsets.items():
        if s.wnid == wnid:
            return i
    raise NotFound(f"{wnid} is not in the hierarchy; add it with 'synset hierarchy add {wnid}'.")


def as_json(session: Session, wnid: str | None = None) -> list[dict[str, object]]:
    graph = load_graph(session)
    ids = (
        graph.below(_find(graph, wnid))
        if wnid
        else sorted(graph.synsets, key=lambda i: graph.synsets[i].wnid)
    )
    depths = graph.depths()
    counts = _counts(session)
    queries: dict[int, list[str]] = defaultdict(list)
    for sid, text in session.execute(
        select(Query.synset_id, Query.text).where(Query.active).order_by(Query.id)
    ):
        queries[sid].append(text)
    out = []
    for i in ids:
        s = graph.synsets[i]
        out.append(
            {
                "wnid": s.wnid,
                "name": s.name,
                "lemmas": s.lemmas,
                "gloss": s.gloss,
                "origin": s.origin,
                "parents": sorted(graph.synsets[p].wnid for p in graph.parents.get(i, [])),
                "depth": depths.get(i, 0),
                "target": s.target,
                "imageable": s.imageable,
                "goal": s.goal,
                "queries": queries.get(i, []),
                "counts": {name: counts[name].get(i, 0) for name in SHOWN_COUNTS},
            }
        )
    return out


def as_tree(session: Session, wnid: str | None = None, max_depth: int | None = None) -> list[str]:
    graph = load_graph(session)
    counts = _counts(session)
    starts = [_find(graph, wnid)] if wnid else graph.roots
    lines: list[str] = []
    printed: set[int] = set()

    def label(i: int) -> str:
        s = graph.synsets[i]
        mark = "*" if s.target else " "
        tally = "/".join(str(counts[n].get(i, 0)) for n in SHOWN_COUNTS)
        warn = "  (abstract: hard to photograph)" if s.target and not s.imageable else ""
        return f"{mark} {s.name} ({s.wnid})  [{tally}]{warn}"

    def walk(i: int, prefix: str, last: bool, level: int, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        kids = graph.children.get(i, [])
        if i in printed and kids:
            lines.append(f"{prefix}{branch}{label(i)}  ... (subtree shown above)")
            return
        lines.append(f"{prefix}{branch}{label(i)}")
        printed.add(i)
        if max_depth is not None and level >= max_depth:
            if kids:
                lines.append(
                    f"{prefix}{'' if top else ('    ' if last else '│   ')}... {len(kids)} more"
                )
            return
        inner = prefix + ("" if top else ("    " if last else "│   "))
        for n, child in enumerate(kids):
            walk(child, inner, n == len(kids) - 1, level + 1, False)

    for start in starts:
        walk(start, "", True, 0, True)
    return lines
