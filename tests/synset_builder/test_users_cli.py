"""``synset users add|list|disable|enable`` (issue 20.3), both backends."""

from __future__ import annotations

import json

from synset_builder.accounts import authenticate
from synset_builder.db.models import Annotator, Candidate, Image, Synset, Vote
from synset_builder.db.session import make_engine, session_scope


def add(cli, name: str, password: str, *extra: str):
    return cli("users", "add", name, "--password-stdin", *extra, input=password + "\n")


def check(settings, name: str, password: str) -> bool:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        ok = authenticate(s, name, password) is not None
    engine.dispose()
    return ok


def test_add_refuses_an_existing_name_unless_reset(cli, settings) -> None:
    assert add(cli, "alice", "first password", "--role", "curator").code == 0
    typo = add(cli, "alice", "other password")
    assert typo.code != 0
    assert "exists already" in typo.err and "--reset" in typo.err
    assert len(typo.err.strip().splitlines()) == 1
    assert check(settings, "alice", "first password")  # untouched, role too
    reset = add(cli, "alice", "other password", "--role", "annotator", "--reset")
    assert reset.code == 0, reset.err
    assert check(settings, "alice", "other password")
    assert not check(settings, "alice", "first password")
    listed = json.loads(cli("users", "list", "--json").out)
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "annotator")]


def test_list_shows_role_state_crowd_id_votes_and_last_seen(cli, settings) -> None:
    assert cli("users", "list").out.startswith("No accounts yet")
    assert add(cli, "cur", "a curator pass", "--role", "curator").code == 0
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        worker = Annotator(username="crowd-W5", worker_id="W5", role="annotator", pages_done=1)
        # Known only from a vote file: votes, but never in the web app.
        imported = Annotator(username="crowd-F1", worker_id="F1", role="annotator")
        synset = Synset(wnid="n00000001", name="thing", lemmas=["thing"], gloss="a thing")
        image = Image(sha256="ab" * 32, path="x.jpg", width=1, height=1, format="JPEG", bytes=1)
        s.add_all([worker, synset, image])
        s.flush()
        cand = Candidate(image_id=image.id, synset_id=synset.id, source="urls", rank=0)
        s.add(cand)
        s.flush()
        s.add(imported)
        s.flush()
        s.add(Vote(candidate_id=cand.id, annotator_id=worker.id, answer=True))
        s.add(Vote(candidate_id=cand.id, annotator_id=imported.id, answer=False))
    engine.dispose()
    assert cli("users", "disable", "crowd-W5").code == 0
    rows = {u["name"]: u for u in json.loads(cli("users", "list", "--json").out)}
    assert set(rows["crowd-W5"]) == {
        "name", "role", "enabled", "crowd_id", "votes", "open_reports", "last_seen"
    }  # fmt: skip
    assert rows["crowd-W5"]["enabled"] is False and rows["crowd-W5"]["crowd_id"] == "W5"
    assert rows["crowd-W5"]["votes"] == 1 and rows["crowd-W5"]["last_seen"]
    assert rows["cur"]["role"] == "curator" and rows["cur"]["enabled"] is True
    assert rows["cur"]["votes"] == 0 and rows["cur"]["last_seen"] is None
    assert rows["crowd-F1"]["votes"] == 1 and rows["crowd-F1"]["last_seen"] is None
    table = cli("users", "list").out.splitlines()
    assert table[0].split()[:3] == ["name", "role", "enabled"]
    line = next(row for row in table if row.startswith("crowd-W5"))
    assert line.split()[:5] == ["crowd-W5", "annotator", "no", "W5", "1"]
    assert "never" in next(row for row in table if row.startswith("cur "))


def test_disable_and_enable(cli, settings) -> None:
    assert add(cli, "bob", "bob's password").code == 0
    done = cli("users", "disable", "bob")
    assert done.code == 0 and "disabled" in done.out
    assert not check(settings, "bob", "bob's password")
    assert cli("users", "enable", "bob").code == 0
    assert check(settings, "bob", "bob's password")
    missing = cli("users", "disable", "nobody")
    assert missing.code == 4 and "no account named 'nobody'" in missing.err
    assert len(missing.err.strip().splitlines()) == 1
