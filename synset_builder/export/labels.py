"""Which class an accepted image is exported under.

An image may be accepted for several synsets (a whippet photo accepted as both
*dog* and *whippet*). The rule trainers expect: the most specific label wins when
one label is an ancestor of the other; unrelated labels (whippet and cat) make the
image ambiguous, left out unless the export is multi-label. Before that rule
applies, a *level* maps every synset to the class it is exported as: itself by
default, its ancestor at a WordNet depth (``depth:N``), or its nearest ancestor in
a curator's class list (``--classes FILE``), so 120 dog breeds can be exported as
"dog vs cat" without voting again. WordNet is a DAG, so a synset may reach two
classes at the same distance; that too is ambiguity, never a silent pick.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Synset, SynsetEdge
from synset_builder.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class Level:
    """``leaf`` (the synset itself), ``depth`` (ancestor at N) or ``classes`` (a list)."""

    kind: str = "leaf"
    depth: int = 0
    classes: frozenset[str] = frozenset()

    def describe(self) -> str:
        if self.kind == "depth":
            return f"depth:{self.depth}"
        if self.kind == "classes":
            return f"classes:{len(self.classes)}"
        return "leaf"


def parse_level(level: str | None, classes_file: str | None) -> Level:
    """Read ``--level depth:N`` / ``--classes FILE`` (one wnid per line, ``#`` comments)."""
    if level and classes_file:
        raise InvalidInput("Give either --level or --classes, not both.")
    if classes_file:
        try:
            text = open(classes_file, encoding="utf-8").read()  # noqa: SIM115 - read at once
        except OSError as exc:
            raise NotFound(
                f"The classes file {classes_file} cannot be read: {exc.strerror}."
            ) from exc
        wnids = {
            line.split("#")[0].split()[0]
            for line in text.splitlines()
            if line.split("#")[0].strip()
        }
        if not wnids:
            raise InvalidInput(f"The classes file {classes_file} lists no wnids.")
        return Level("classes", classes=frozenset(wnids))
    if level in (None, "", "leaf"):
        return Level()
    kind, _, number = level.partition(":")
    if kind != "depth" or not number.isdigit():
        raise InvalidInput(f"--level {level!r} is not 'leaf' or 'depth:N' (N a whole number).")
    return Level("depth", depth=int(number))


@dataclass
class Hierarchy:
    """The synset DAG as stored: parents per synset id, and wnid/id lookups."""

    parents: dict[int, set[int]] = field(default_factory=dict)
    wnid: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ancestors = cache(self._ancestors)
        self.depth = cache(self._depth)

    def _ancestors(self, sid: int) -> frozenset[int]:
        """Every strict ancestor."""
        out: set[int] = set()
        for parent in self.parents.get(sid, ()):
            out.add(parent)
            out |= self.ancestors(parent)
        return frozenset(out)

    def _depth(self, sid: int) -> int:
        """Shortest distance from a root (a synset with no stored parent)."""
        parents = self.parents.get(sid)
        if not parents:
            return 0
        return 1 + min(self.depth(p) for p in parents)

    def map(self, sid: int, level: Level, class_ids: frozenset[int]) -> set[int]:
        """The class(es) synset ``sid`` is exported as; empty when outside the list."""
        if level.kind == "leaf":
            return {sid}
        if level.kind == "depth":
            if self.depth(sid) <= level.depth:
                return {sid}
            return {a for a in self.ancestors(sid) if self.depth(a) == level.depth}
        # Nearest ancestor-or-self in the list, breadth first; a tie keeps them all.
        frontier, seen = {sid}, {sid}
        while frontier:
            hits = frontier & class_ids
            if hits:
                return hits
            frontier = {p for s in frontier for p in self.parents.get(s, ()) if p not in seen}
            seen |= frontier
        return set()

    def most_specific(self, labels: Iterable[int]) -> set[int]:
        """Drop every label that is an ancestor of another one."""
        labels = set(labels)
        return {x for x in labels if not any(x in self.ancestors(y) for y in labels if y != x)}


def load_hierarchy(session: Session) -> Hierarchy:
    h = Hierarchy()
    for sid, wnid in session.execute(select(Synset.id, Synset.wnid)):
        h.wnid[sid] = wnid
    for parent, child in session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id)):
        h.parents.setdefault(child, set()).add(parent)
    _check_acyclic(h)
    return h


def _check_acyclic(h: Hierarchy) -> None:
    """A cycle would make 'ancestor' meaningless; say so instead of recursing forever."""
    indegree = {s: 0 for s in h.wnid}
    children: dict[int, list[int]] = {}
    for child, parents in h.parents.items():
        indegree[child] = len(parents)
        for p in parents:
            children.setdefault(p, []).append(child)
    queue = deque(s for s, d in indegree.items() if d == 0)
    seen = 0
    while queue:
        s = queue.popleft()
        seen += 1
        for c in children.get(s, ()):
            indegree[c] -= 1
            if indegree[c] == 0:
                queue.append(c)
    if seen != len(indegree):
        raise InvalidInput("The synset hierarchy has a cycle; fix its edges before exporting.")


def class_ids_for(session: Session, level: Level) -> frozenset[int]:
    """Synset ids of a ``--classes`` list; an unknown wnid is an error, not a silent skip."""
    if level.kind != "classes":
        return frozenset()
    stmt = select(Synset.wnid, Synset.id).where(Synset.wnid.in_(sorted(level.classes)))
    found = {wnid: sid for wnid, sid in session.execute(stmt)}
    missing = sorted(level.classes - set(found))
    if missing:
        raise NotFound(f"The classes file names unknown synsets: {', '.join(missing[:5])}.")
    return frozenset(found.values())
