"""The hierarchy stage: WordNet subtrees, lists, custom synsets, queries, the tree."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from synset_builder.db.models import Query, Synset, SynsetEdge
from synset_builder.db.session import make_engine
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.hierarchy import targets as h
from synset_builder.hierarchy.queries import edit_queries
from synset_builder.hierarchy.view import as_json, as_tree

DOG, ENTITY, HUNTING_DOG, WHIPPET = "n02084071", "n00001740", "n02087122", "n02091134"


def add(session, wn, *specs, depth=None, leaves=False, exclude=()):
    roots = [h.resolve(wn, s) for s in specs]
    excl = [h.resolve(wn, e) for e in exclude]
    return h.store(session, h.select_synsets(roots, depth=depth, leaves=leaves, exclude=excl))


def targets(session) -> set[str]:
    return set(session.scalars(select(Synset.wnid).where(Synset.target)))


def counts(session) -> tuple[int, int, int]:
    return tuple(
        session.scalar(select(func.count()).select_from(t)) for t in (Synset, SynsetEdge, Query)
    )


def test_dog_with_all_hyponyms_and_ancestors(session, wn) -> None:
    report = add(session, wn, DOG)
    assert report.targets_new == 190  # dog.n.01 and its 189 hyponyms in WordNet 3.0
    assert len(targets(session)) == 190
    rows = {s.wnid: s for s in session.scalars(select(Synset))}
    assert rows[ENTITY].target is False
    dog_ancestors = {h.wnid_of(a) for a in h.closure_up([h.resolve(wn, DOG)])}
    assert ENTITY in dog_ancestors
    assert all(not rows[a].target for a in dog_ancestors)
    # Ancestors of every target are stored (a puppy is also a young mammal).
    every = {h.wnid_of(a) for a in h.closure_up([h.resolve(wn, w) for w in targets(session)])}
    assert set(rows) == targets(session) | every
    assert "n01321579" in every  # young mammal
    # Every hypernym edge between stored synsets is kept (a DAG, not a tree).
    edges = set(session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id)))
    by_id = {r.id: r.wnid for r in rows.values()}
    stored = {(by_id[p], by_id[c]) for p, c in edges}
    for wnid in rows:
        for parent in h.parents(h.resolve(wn, wnid)):
            assert (h.wnid_of(parent), wnid) in stored
    assert {p for p, c in stored if c == DOG} == {
        "n02083346",
        "n01317541",
    }  # canine, domestic animal


def test_re_adding_is_idempotent(session, wn) -> None:
    add(session, wn, DOG)
    before = counts(session)
    report = add(session, wn, DOG)
    assert (report.targets_new, report.ancestors_new, report.edges_new, report.queries_new) == (
        0,
        0,
        0,
        0,
    )
    assert counts(session) == before


def test_depth_limits_descendants(session, wn) -> None:
    add(session, wn, DOG, depth=0)
    assert targets(session) == {DOG}
    add(session, wn, DOG, depth=1)
    direct = {h.wnid_of(c) for c in h.children(h.resolve(wn, DOG))}
    assert targets(session) == {DOG} | direct


def test_leaves_keeps_only_leaves_as_targets(session, wn) -> None:
    add(session, wn, HUNTING_DOG, leaves=True)
    found = targets(session)
    assert WHIPPET in found and HUNTING_DOG not in found
    assert all(not h.children(h.resolve(wn, w)) for w in found)
    assert session.scalar(select(Synset).where(Synset.wnid == HUNTING_DOG)) is not None


def test_exclude_drops_a_subtree(session, wn) -> None:
    add(session, wn, DOG, exclude=[HUNTING_DOG])
    found = targets(session)
    assert HUNTING_DOG not in found and WHIPPET not in found
    assert "n02110185" in found  # Siberian husky is a working dog


def test_ilsvrc2012_gives_exactly_1000_noun_targets(session, wn) -> None:
    wnids = h.ilsvrc2012_wnids()
    assert len(wnids) == 1000
    roots = [h.resolve(wn, w) for w in wnids]
    h.store(session, h.select_synsets(roots, depth=0))
    found = targets(session)
    assert found == set(wnids)
    assert all(w.startswith("n") for w in found)
    assert session.scalar(select(Synset).where(Synset.wnid == ENTITY)).target is False


def test_the_package_ships_its_own_ilsvrc_list() -> None:
    from tests.conftest import SHARED

    shared = (SHARED / "data" / "ilsvrc2012_wnids.txt").read_text().split()
    assert h.ilsvrc2012_wnids() == [t for t in shared if h.WNID_RE.match(t)]


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("n99999999", NotFound, "not a WordNet 3.0 noun synset"),
        ("v01166351", InvalidInput, "not a noun synset"),
        ("eat.v.01", InvalidInput, "not a noun synset"),
        ("dog", InvalidInput, "ambiguous"),
        ("qwertyuiop", NotFound, "No WordNet noun synset"),
    ],
)
def test_bad_names_are_refused(wn, spec, error, words) -> None:
    with pytest.raises(error, match=words):
        h.resolve(wn, spec)


def test_resolve_by_name_and_lemma(wn) -> None:
    assert h.wnid_of(h.resolve(wn, "dog.n.01")) == DOG
    assert h.wnid_of(h.resolve(wn, "whippet")) == WHIPPET
    assert h.wnid_of(h.resolve(wn, "Siberian husky")) == "n02110185"


def test_wnid_list_parsing() -> None:
    text = "# my classes\nn02084071 : dog\n\n  n02091134   whippet # fast\n"
    assert h.parse_wnid_list(text, "f") == [DOG, WHIPPET]
    with pytest.raises(InvalidInput, match="f:2: 'dog'"):
        h.parse_wnid_list("n02084071\ndog\n", "f")


def test_query_expansion_and_curation(session, wn) -> None:
    add(session, wn, WHIPPET, depth=0)
    whippet = session.scalar(select(Synset).where(Synset.wnid == WHIPPET))
    texts = {
        q.text: q.kind for q in session.scalars(select(Query).where(Query.synset_id == whippet.id))
    }
    assert texts == {"whippet": "lemma", "whippet greyhound": "lemma+parent"}
    queries = edit_queries(session, whippet, add=["racing whippet"], remove=["whippet greyhound"])
    state = {q.text: q.active for q in queries}
    assert state == {"whippet": True, "racing whippet": True, "whippet greyhound": False}
    add(session, wn, WHIPPET, depth=0)  # re-adding never revives a removed query
    row = session.scalar(select(Query).where(Query.text == "whippet greyhound"))
    assert row.active is False
    with pytest.raises(InvalidInput):
        edit_queries(session, whippet, remove=["no such query"])


def test_expansion_skips_repeated_head_words() -> None:
    from synset_builder.hierarchy.queries import expand

    got = [t for t, _ in expand(["hunting_dog"], ["dog"])]
    assert got == ["hunting dog"]
    # The parent's head noun, not its whole lemma (issue 20.10).
    got = [t for t, _ in expand(["Siberian_husky", "husky"], ["sled_dog", "Husky"])]
    assert got == ["Siberian husky", "husky", "Siberian husky dog", "husky dog"]


def test_custom_synset_is_stable_and_idempotent(session, wn) -> None:
    row, created = h.add_custom(
        session, wn, "corgi <script>alert(1)</script>", parent=DOG, gloss="a <b>short</b> dog",
        queries=["fluffy corgi"],
    )  # fmt: skip
    assert created and row.origin == "custom" and row.target
    assert row.wnid == h.custom_wnid("corgi <script>alert(1)</script>", DOG)
    again, created_again = h.add_custom(
        session, wn, "corgi <script>alert(1)</script>", parent=DOG, gloss="x"
    )
    assert not created_again and again.id == row.id
    parents = as_json(session, row.wnid)[0]["parents"]
    assert parents == [DOG]
    assert session.scalar(select(Synset).where(Synset.wnid == ENTITY)) is not None
    texts = set(session.scalars(select(Query.text).where(Query.synset_id == row.id)))
    assert "fluffy corgi" in texts and "corgi <script>alert(1)</script> dog" in texts


def test_abstract_synsets_are_flagged(session, wn) -> None:
    report = add(session, wn, "idea.n.01", depth=0)
    assert report.not_imageable == [h.wnid_of(wn.synset("idea.n.01"))]
    add(session, wn, WHIPPET, depth=0)
    rows = {s.wnid: s.imageable for s in session.scalars(select(Synset).where(Synset.target))}
    assert rows[WHIPPET] is True


def test_show_json_and_tree(session, wn) -> None:
    add(session, wn, HUNTING_DOG, depth=1)
    data = {d["wnid"]: d for d in as_json(session)}
    entity = data[ENTITY]
    assert entity["depth"] == 0 and entity["parents"] == [] and entity["target"] is False
    hunting = data[HUNTING_DOG]
    assert set(hunting) >= {
        "wnid",
        "name",
        "gloss",
        "parents",
        "depth",
        "target",
        "queries",
        "counts",
    }
    assert hunting["parents"] == [DOG]
    assert hunting["depth"] == data[DOG]["depth"] + 1
    assert hunting["queries"][0] == "hunting dog"
    assert set(hunting["counts"]) == {"candidates", "clean", "accepted"}
    sub = as_json(session, HUNTING_DOG)
    assert {d["wnid"] for d in sub} == {d for d, v in data.items() if v["target"]}
    tree = as_tree(session, HUNTING_DOG)
    assert tree[0].startswith("* hunting dog (n02087122)")
    assert any("└── " in line or "├── " in line for line in tree[1:])
    with pytest.raises(NotFound):
        as_json(session, "n00000000")


# --- the command line: errors write nothing -------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["n99999999"], "not a WordNet 3.0 noun synset"),
        (["v01166351"], "not a noun synset"),
        (["dog"], "ambiguous"),
    ],
)
def test_cli_errors_are_clear_and_write_nothing(cli, settings, wordnet_env, args, words) -> None:
    result = cli("hierarchy", "add", WHIPPET, *args)
    assert result.code != 0
    assert words in result.err.splitlines()[0]
    assert "Traceback" not in result.err
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Synset)).scalar() == 0
    engine.dispose()


def test_cli_add_file_show_and_queries(cli, wordnet_env, tmp_path) -> None:
    listing = tmp_path / "classes.txt"
    listing.write_text(f"# two breeds\n{WHIPPET} whippet\nn02110185 : Siberian husky\n")
    result = cli("hierarchy", "add", "--file", str(listing))
    assert result.code == 0, result.err
    assert "Added 2 target synsets" in result.out
    shown = json.loads(cli("hierarchy", "show", "--json").out)
    assert {d["wnid"] for d in shown if d["target"]} == {WHIPPET, "n02110185"}
    status = json.loads(cli("status", "--json").out)
    assert {d["wnid"] for d in status if d["target"]} == {WHIPPET, "n02110185"}
    tree = cli("hierarchy", "show").out
    assert "* whippet (n02091134)" in tree and "entity (n00001740)" in tree
    result = cli("hierarchy", "queries", WHIPPET, "--add", "whippet dog")
    assert "whippet dog  (custom)" in result.out
    custom = cli("hierarchy", "add-custom", "robot dog", "--parent", DOG, "--gloss", "a machine")
    assert custom.code == 0 and "Added robot dog (c" in custom.out
    assert cli("hierarchy", "add").code != 0
