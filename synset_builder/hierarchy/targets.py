"""The category hierarchy: which synsets to collect images for.

A curator names synsets by wnid (``n02084071``), synset name (``dog.n.01``) or
lemma (``dog``); named synsets come with their descendants (hyponyms and instance
hyponyms) as targets, while every ancestor up to ``entity`` is stored as a
non-target so the tree can be shown and exported at any level. WordNet is a DAG:
every hypernym edge between stored synsets is kept. Everything is resolved before
anything is written, so a bad name leaves the database untouched.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nltk.corpus.reader.wordnet import Synset as WnSynset
from nltk.corpus.reader.wordnet import WordNetCorpusReader, WordNetError
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Synset, SynsetEdge
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.hierarchy.queries import ensure_queries, expand, lemma_text

WNID_RE = re.compile(r"^([nvasr])(\d{8})$")
PHYSICAL_ENTITY = "n00001930"
# Lexicographer files of things one can point a camera at. WordNet files some of
# them under ``abstraction`` (bubble.n.01 is a round shape, yet noun.object).
VISIBLE_LEXNAMES = frozenset({
    "noun.artifact", "noun.object", "noun.animal", "noun.plant", "noun.food",
    "noun.body", "noun.substance", "noun.person",
})  # fmt: skip
# Communication that exists to be seen: street signs, traffic lights, flags, beacons.
VISIBLE_DISPLAYS = frozenset({"sign.n.02", "visual_signal.n.01"})


def wnid_of(s: WnSynset) -> str:
    return f"{s.pos() if s.pos() != 's' else 'a'}{s.offset():08d}"


def parents(s: WnSynset) -> list[WnSynset]:
    return s.hypernyms() + s.instance_hypernyms()


def children(s: WnSynset) -> list[WnSynset]:
    return s.hyponyms() + s.instance_hyponyms()


def resolve(wn: WordNetCorpusReader, spec: str) -> WnSynset:
    """A noun synset from a wnid, a synset name or an unambiguous lemma."""
    spec = spec.strip()
    if m := WNID_RE.match(spec):
        pos, offset = m.groups()
        if pos != "n":
            raise InvalidInput(f"{spec} is not a noun synset; only nouns can be image categories.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NLTK warns and returns None for a bad offset
            try:
                found = wn.synset_from_pos_and_offset("n", int(offset))
            except WordNetError:
                found = None
        if found is None:
            raise NotFound(f"{spec} is not a WordNet 3.0 noun synset.")
        return found
    parts = spec.rsplit(".", 2)
    if len(parts) == 3 and parts[1] in "nvasr" and parts[2].isdigit():
        if parts[1] != "n":
            raise InvalidInput(f"{spec} is not a noun synset; only nouns can be image categories.")
        try:
            return wn.synset(spec)
        except WordNetError as exc:
            raise NotFound(f"{spec} is not a WordNet 3.0 synset name.") from exc
    senses = wn.synsets(spec.replace(" ", "_"), pos="n")
    if not senses:
        raise NotFound(f"No WordNet noun synset is called {spec!r}.")
    if len(senses) > 1:
        listing = "\n".join(f"  {wnid_of(s)}  {s.name():<28} {s.definition()}" for s in senses)
        raise InvalidInput(
            f"{spec!r} is ambiguous ({len(senses)} noun senses); name one by wnid:\n{listing}"
        )
    return senses[0]


def parse_wnid_list(text: str, origin: str) -> list[str]:
    """One wnid per line; anything after it is ignored; ``#`` starts a comment."""
    wnids: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        token = line.split("#", 1)[0].strip().split(maxsplit=1)
        if not token:
            continue
        if not WNID_RE.match(token[0]):
            raise InvalidInput(f"{origin}:{lineno}: {token[0]!r} is not a wnid like n02084071.")
        wnids.append(token[0])
    return wnids


def ilsvrc2012_wnids() -> list[str]:
    text = resources.files("synset_builder").joinpath("data/ilsvrc2012_wnids.txt").read_text()
    return parse_wnid_list(text, "ilsvrc2012_wnids.txt")


def read_wnid_file(path: Path) -> list[str]:
    try:
        return parse_wnid_list(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise NotFound(f"Cannot read {path}: {exc.strerror}.") from exc


def is_imageable(s: WnSynset, memo: dict[WnSynset, bool] | None = None) -> bool:
    """Whether photos can show it: the abstract-synset warning must not cry wolf.

    Everything under ``physical_entity`` can; so can a synset filed, or with an
    ancestor filed, as an object or artifact, and visible displays (signs, visual
    signals), which WordNet files under ``abstraction``. Ideas, acts and
    attributes cannot.
    """
    memo = {} if memo is None else memo
    if s not in memo:
        memo[s] = False  # a DAG has no cycles; this only guards against bad data
        memo[s] = (
            wnid_of(s) == PHYSICAL_ENTITY
            or s.name() in VISIBLE_DISPLAYS
            or s.lexname() in VISIBLE_LEXNAMES
            or any(is_imageable(p, memo) for p in parents(s))
        )
    return memo[s]


def closure_down(roots: Iterable[WnSynset]) -> set[WnSynset]:
    seen: set[WnSynset] = set()
    stack = list(roots)
    while stack:
        s = stack.pop()
        if s not in seen:
            seen.add(s)
            stack.extend(children(s))
    return seen


def closure_up(nodes: Iterable[WnSynset]) -> set[WnSynset]:
    seen: set[WnSynset] = set()
    stack = [p for n in nodes for p in parents(n)]
    while stack:
        s = stack.pop()
        if s not in seen:
            seen.add(s)
            stack.extend(parents(s))
    return seen


def descendants(root: WnSynset, depth: int | None, excluded: set[WnSynset]) -> set[WnSynset]:
    """The root and its hyponyms down to ``depth`` levels (None: all), minus excluded."""
    found = {root}
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        nxt = []
        for s in frontier:
            for c in children(s):
                if c not in found and c not in excluded:
                    found.add(c)
                    nxt.append(c)
        frontier = nxt
        level += 1
    return found


@dataclass
class AddReport:
    targets_new: int = 0
    targets_total: int = 0
    ancestors_new: int = 0
    edges_new: int = 0
    queries_new: int = 0
    not_imageable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Selection:
    """What an ``add`` resolved to, before anything is written."""

    targets: frozenset[WnSynset]
    others: frozenset[WnSynset]


def select_synsets(
    roots: Sequence[WnSynset],
    *,
    depth: int | None,
    leaves: bool = False,
    exclude: Sequence[WnSynset] = (),
) -> Selection:
    excluded = closure_down(exclude)
    targets: set[WnSynset] = set()
    traversed: set[WnSynset] = set()
    for root in roots:
        if root in excluded:
            continue
        nodes = descendants(root, depth, excluded)
        traversed |= nodes
        if leaves:
            nodes = {n for n in nodes if not any(c in nodes for c in children(n))}
        targets |= nodes
    others = (traversed | closure_up(traversed)) - targets
    return Selection(frozenset(targets), frozenset(others))


def store(session: Session, selection: Selection) -> AddReport:
    """Write the selection: new rows, promoted targets, edges, queries. Idempotent."""
    report = AddReport()
    wanted = selection.targets | selection.others
    existing = {s.wnid: s for s in session.scalars(select(Synset))}
    memo: dict[WnSynset, bool] = {}
    rows: dict[WnSynset, Synset] = {}
    for s in sorted(wanted, key=wnid_of):
        wnid = wnid_of(s)
        row = existing.get(wnid)
        is_target = s in selection.targets
        if row is None:
            row = Synset(
                wnid=wnid,
                name=lemma_text(s.lemma_names()[0]),
                lemmas=[lemma_text(x) for x in s.lemma_names()],
                gloss=s.definition(),
                origin="wordnet",
                target=is_target,
                imageable=is_imageable(s, memo),
            )
            session.add(row)
            existing[wnid] = row
            if is_target:
                report.targets_new += 1
            else:
                report.ancestors_new += 1
        else:
            if is_target and not row.target:
                # An ancestor, or a removed target, becomes a target again; its
                # candidates and votes were kept and count again.
                row.target = True
                report.targets_new += 1
            # Rows stored under an older rule are corrected when added again.
            row.imageable = is_imageable(s, memo)
        rows[s] = row
        if is_target and not row.imageable:
            report.not_imageable.append(wnid)
    session.flush()
    report.edges_new = _store_edges(session, rows, existing)
    for s in selection.targets:
        heads = [p.lemma_names()[0] for p in parents(s)]
        report.queries_new += ensure_queries(session, rows[s], expand(s.lemma_names(), heads))
    report.targets_total = sum(1 for r in existing.values() if r.target)
    session.flush()
    return report


@dataclass
class RemoveReport:
    untargeted: list[str] = field(default_factory=list)
    targets_total: int = 0


def remove_targets(session: Session, wnid: str, *, with_descendants: bool = False) -> RemoveReport:
    """Stop collecting for a stored synset (and, if asked, every stored descendant).

    Only the ``target`` flag changes: rows, edges, queries, candidates and votes
    stay, so the crawl, serving and status leave the synset alone, and adding it
    again brings everything back as it was.
    """
    rows = {r.id: r for r in session.scalars(select(Synset))}
    start = next((r for r in rows.values() if r.wnid == wnid), None)
    if start is None:
        raise NotFound(f"{wnid} is not in the hierarchy; nothing was changed.")
    chosen = {start.id}
    if with_descendants:
        below: dict[int, list[int]] = {}
        for parent, child in session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id)):
            below.setdefault(parent, []).append(child)
        stack = [start.id]
        while stack:
            for child in below.get(stack.pop(), []):
                if child not in chosen:
                    chosen.add(child)
                    stack.append(child)
    report = RemoveReport()
    for sid in sorted(chosen, key=lambda i: rows[i].wnid):
        if rows[sid].target:
            rows[sid].target = False
            report.untargeted.append(rows[sid].wnid)
    session.flush()
    report.targets_total = sum(1 for r in rows.values() if r.target)
    return report


def _store_edges(session: Session, rows: dict[WnSynset, Synset], stored: dict[str, Synset]) -> int:
    """Every hypernym edge between stored synsets touching the new ones."""
    have = {(p, c) for p, c in session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id))}
    new = 0
    for s, row in rows.items():
        links = [(stored.get(wnid_of(p)), row) for p in parents(s)]
        links += [(row, stored.get(wnid_of(c))) for c in children(s)]
        for parent, child in links:
            if parent is None or child is None or (parent.id, child.id) in have:
                continue
            session.add(SynsetEdge(parent_id=parent.id, child_id=child.id))
            have.add((parent.id, child.id))
            new += 1
    return new


def custom_wnid(name: str, parent_wnid: str) -> str:
    """Stable across databases: the same name under the same parent gives the same id."""
    digest = hashlib.sha1(f"{parent_wnid}/{name.casefold()}".encode()).hexdigest()
    return f"c{int(digest[:12], 16) % 10**8:08d}"


def add_custom(
    session: Session,
    wn: WordNetCorpusReader,
    name: str,
    *,
    parent: str,
    gloss: str,
    queries: Sequence[str] = (),
) -> tuple[Synset, bool]:
    """A curator's own category under a stored or WordNet parent; returns (row, created)."""
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A custom synset needs a name.")
    parent_row = session.scalar(select(Synset).where(Synset.wnid == parent))
    if parent_row is None:
        wn_parent = resolve(wn, parent)
        store(session, Selection(frozenset(), frozenset({wn_parent}) | closure_up([wn_parent])))
        parent_row = session.scalar(select(Synset).where(Synset.wnid == wnid_of(wn_parent)))
    assert parent_row is not None
    wnid = custom_wnid(name, parent_row.wnid)
    row = session.scalar(select(Synset).where(Synset.wnid == wnid))
    created = row is None
    if row is None:
        row = Synset(
            wnid=wnid,
            name=name,
            lemmas=[name],
            gloss=gloss,
            origin="custom",
            target=True,
            imageable=parent_row.imageable,
        )
        session.add(row)
        session.flush()
        session.add(SynsetEdge(parent_id=parent_row.id, child_id=row.id))
    wanted = expand([name], [parent_row.lemmas[0] if parent_row.lemmas else parent_row.name])
    wanted += [(lemma_text(q), "custom") for q in queries]
    ensure_queries(session, row, wanted)
    session.flush()
    return row, created
