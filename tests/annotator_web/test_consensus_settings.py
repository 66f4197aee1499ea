"""The web app and ``synset consensus`` decide by the same rule: the consensus settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from synset_builder.cli.consensus import _dynamic_config
from synset_builder.config import Settings, load_settings
from synset_builder.db.models import Consensus
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import make_web


@pytest.mark.parametrize(
    ("overrides", "decisions", "initial"),
    [
        ({}, {"pending"}, True),  # defaults: 10 initial items that need 10 votes each
        (
            {"consensus_initial_size": 0, "consensus_max_votes": 1},
            {"accepted", "rejected", "undecided"},
            False,
        ),
    ],
)
def test_submit_applies_the_consensus_settings(
    settings: Settings,
    photos: list[Path],
    overrides: dict[str, int],
    decisions: set[str],
    initial: bool,
) -> None:
    web = make_web(settings, photos, n=4, web_grid_size=4, **overrides)
    try:
        ann = web.client("ann")
        ids = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=4").json()["items"]]
        votes = [{"candidate_id": c, "label": True} for c in ids]
        assert ann.post("/api/votes", json={"votes": votes}).json()["accepted"] == 4
        with session_scope(web.engine) as s:
            rows = list(s.scalars(select(Consensus)))
            assert {r.candidate_id for r in rows} == set(ids)
            assert {r.decision for r in rows} <= decisions
            assert all(r.initial is initial and r.n_votes == 1 for r in rows)
    finally:
        web.close()


def test_cli_defaults_are_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNSET_CONSENSUS_THRESHOLD", "0.99")
    monkeypatch.setenv("SYNSET_CONSENSUS_MAX_VOTES", "4")
    monkeypatch.setenv("SYNSET_CONSENSUS_REQUEUE_VOTES", "2")
    cfg = _dynamic_config(None, None, None, None)
    assert cfg == load_settings().consensus
    assert (cfg.threshold, cfg.max_votes, cfg.requeue_votes) == (0.99, 4, 2)
    assert _dynamic_config(0.9, None, 3, None).threshold == 0.9  # an option wins
    assert _dynamic_config(0.9, None, 3, None).initial_size == 3
