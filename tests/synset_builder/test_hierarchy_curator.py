"""Issue 20 (4, 8, 9, 10): a curator's first day with the hierarchy.

Adding a subtree says how much came with it and how to narrow it; ``remove``
un-targets without deleting anything; ``show`` of a wnid WordNet does not have
says so; ILSVRC's street signs and traffic lights are not "abstract"; queries
use the parent's head noun.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select

from synset_builder.crawl.fetch import FetchConfig
from synset_builder.crawl.plan import CrawlConfig, plan
from synset_builder.db.models import Annotator, Candidate, Image, Query, Synset, Vote
from synset_builder.hierarchy import targets as h
from synset_builder.hierarchy.queries import expand, head_noun

ANT, BEE, PHARAOH_ANT = "n02219486", "n02206856", "n02220055"


def _targets(session) -> set[str]:
    return set(session.scalars(select(Synset.wnid).where(Synset.target)))


def _add(session, wn, *wnids: str, depth: int | None = None) -> h.AddReport:
    return h.store(session, h.select_synsets([h.resolve(wn, w) for w in wnids], depth=depth))


def test_remove_untargets_and_re_adding_brings_candidates_and_votes_back(session, wn) -> None:
    _add(session, wn, ANT, BEE)
    assert PHARAOH_ANT in _targets(session) and len(_targets(session)) > 20
    stored = session.scalar(select(func.count()).select_from(Synset))
    pharaoh = session.scalar(select(Synset).where(Synset.wnid == PHARAOH_ANT))
    image = Image(sha256="a" * 64, path="x.jpg", width=200, height=200, format="JPEG", bytes=9)
    session.add_all([image, Annotator(username="ann")])
    session.flush()
    candidate = Candidate(image_id=image.id, synset_id=pharaoh.id, source="dir")
    session.add(candidate)
    session.flush()
    annotator = session.scalar(select(Annotator).where(Annotator.username == "ann"))
    session.add(Vote(candidate_id=candidate.id, annotator_id=annotator.id, answer=True))
    session.flush()

    report = h.remove_targets(session, ANT, with_descendants=True)
    assert ANT in report.untargeted and PHARAOH_ANT in report.untargeted
    assert BEE in _targets(session) and PHARAOH_ANT not in _targets(session)
    assert report.targets_total == len(_targets(session))
    # Nothing deleted: rows, the candidate and its vote are all still there.
    assert session.scalar(select(func.count()).select_from(Synset)) == stored
    assert session.scalar(select(func.count()).select_from(Vote)) == 1
    # The crawl leaves un-targeted synsets alone.
    cfg = CrawlConfig(fetch=FetchConfig(user_agent="t"), progress=False)
    assert {j.ref.wnid for j in plan(session, cfg)} == _targets(session)

    again = _add(session, wn, PHARAOH_ANT, depth=0)
    assert again.targets_new == 1 and PHARAOH_ANT in _targets(session)
    kept = session.scalar(select(Candidate).where(Candidate.synset_id == pharaoh.id))
    assert kept.id == candidate.id
    assert session.scalar(select(Vote.candidate_id)) == candidate.id


def test_remove_without_descendants_untargets_only_the_named_synset(session, wn) -> None:
    _add(session, wn, ANT)
    before = _targets(session)
    report = h.remove_targets(session, ANT)
    assert report.untargeted == [ANT]
    assert _targets(session) == before - {ANT}


def test_cli_add_says_what_came_with_it_and_remove_undoes_it(cli, wordnet_env) -> None:
    result = cli("hierarchy", "add", ANT)
    assert result.code == 0, result.err
    line = next(x for x in result.out.splitlines() if "descendant" in x)
    assert f"ant ({ANT}) brought" in line
    assert f"synset hierarchy remove {ANT} --with-descendants" in line
    assert "--depth 0" in line
    removed = cli("hierarchy", "remove", ANT, "--with-descendants")
    assert removed.code == 0, removed.err
    assert "0 left" in removed.out and PHARAOH_ANT in removed.out
    assert "kept" in removed.out
    narrow = cli("hierarchy", "add", ANT, "--depth", "0")
    assert "Added 1 target synsets (1 in all)" in narrow.out
    assert "descendant" not in narrow.out
    shown = json.loads(cli("hierarchy", "show", "--json").out)
    assert {d["wnid"] for d in shown if d["target"]} == {ANT}
    missing = cli("hierarchy", "remove", "n99999999")
    assert missing.code != 0 and "not in the hierarchy" in missing.err
    assert "Traceback" not in missing.err


def test_cli_show_of_a_wnid_wordnet_lacks_says_so(cli, wordnet_env) -> None:
    assert cli("hierarchy", "add", ANT, "--depth", "0").code == 0
    typo = cli("hierarchy", "show", "n0220685")
    assert typo.code != 0
    assert "WordNet has no such synset" in typo.err and "add it" not in typo.err
    unknown = cli("hierarchy", "show", "n99999999")
    assert unknown.code != 0
    assert "WordNet has no such noun synset" in unknown.err and "add it" not in unknown.err
    # A real synset that is simply not stored yet is still worth adding.
    real = cli("hierarchy", "show", BEE)
    assert real.code != 0 and f"synset hierarchy add {BEE}" in real.err


def test_no_ilsvrc2012_class_is_called_abstract(wn) -> None:
    from tests.conftest import SHARED

    listed = (SHARED / "data" / "ilsvrc2012_wnids.txt").read_text().split()
    wnids = [w for w in listed if h.WNID_RE.match(w)]
    assert len(wnids) == 1000
    memo: dict = {}
    abstract = [w for w in wnids if not h.is_imageable(h.resolve(wn, w), memo)]
    assert abstract == []
    for name in ("idea.n.01", "happiness.n.01", "justice.n.01"):
        assert not h.is_imageable(wn.synset(name), memo), name


def test_signs_lights_and_bubbles_are_stored_as_imageable(session, wn) -> None:
    street_sign, traffic_light, bubble = "n06794110", "n06874185", "n09229709"
    report = _add(session, wn, street_sign, traffic_light, bubble, "n05833840", depth=0)
    assert report.not_imageable == ["n05833840"]  # idea.n.01 still is abstract
    rows = {s.wnid: s.imageable for s in session.scalars(select(Synset).where(Synset.target))}
    assert rows[street_sign] and rows[traffic_light] and rows[bubble]


def test_queries_use_the_head_noun_of_the_parent() -> None:
    assert head_noun("hymenopterous_insect") == "insect"
    assert head_noun("bird_of_prey") == "bird"
    assert head_noun("greyhound") == "greyhound"
    got = [t for t, _ in expand(["bee"], ["hymenopterous_insect"])]
    assert got == ["bee", "bee insect"]
    got = [t for t, _ in expand(["falcon"], ["bird_of_prey"])]
    assert got == ["falcon", "falcon bird"]
    got = [t for t, _ in expand(["Siberian_husky", "husky"], ["sled_dog"])]
    assert got == ["Siberian husky", "husky", "Siberian husky dog", "husky dog"]
    # The head already closes the lemma: no "hunting dog dog".
    assert [t for t, _ in expand(["hunting_dog"], ["working_dog"])] == ["hunting dog"]


def test_stored_queries_of_bee_use_insect(session, wn) -> None:
    _add(session, wn, BEE, depth=0)
    bee = session.scalar(select(Synset).where(Synset.wnid == BEE))
    texts = set(session.scalars(select(Query.text).where(Query.synset_id == bee.id)))
    assert "bee insect" in texts
    assert not any("hymenopterous" in t for t in texts)


def test_cli_ilsvrc2012_gives_no_abstract_warning_but_ideas_do(cli, wordnet_env) -> None:
    result = cli("hierarchy", "add", "--ilsvrc2012")
    assert result.code == 0, result.err
    assert "Added 1000 target synsets" in result.out
    assert "abstract" not in result.err
    idea = cli("hierarchy", "add", "n05833840", "--depth", "0")
    assert idea.code == 0 and "1 targets are abstract" in idea.err and "n05833840" in idea.err
