"""Takedowns: out of the pool and every later export, flagged in earlier ones, reversible."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import select

from synset_builder.db.models import Candidate, Image, Takedown
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.export.run import ExportConfig, run_export
from synset_builder.export.verify import verify_export
from synset_builder.pool import clean_clause
from synset_builder.takedown import add_takedown, list_takedowns, revoke_takedown
from tests.export_data import build_collection


def exported(out: Path) -> set[str]:
    with (out / "manifest.csv").open(newline="") as fh:
        return {row["sha256"] for row in csv.DictReader(fh)}


def pool_images(session) -> set[str]:
    stmt = (
        select(Image.sha256)
        .select_from(Candidate)
        .join(Image, Image.id == Candidate.image_id)
        .where(clean_clause())
    )
    return set(session.scalars(stmt))


@pytest.fixture
def col(session, tmp_path, photos):
    return build_collection(session, tmp_path / "data", photos, per_class=6)


def export(session, col, out: Path):
    return run_export(session, col.data_dir, ExportConfig(out=out, workers=1), database="test")


def test_takedown_by_sha_leaves_pool_and_later_exports_and_is_reversible(
    session, col, tmp_path
) -> None:
    out = tmp_path / "out"
    export(session, col, out)
    victim = sorted(exported(out))[0]
    assert victim in pool_images(session)
    result = add_takedown(session, kind="sha256", value=victim.upper(), reason="creator asked")
    assert result.created and result.images == 1 and result.value == victim
    again = add_takedown(session, kind="sha256", value=victim, reason="asked twice")
    assert not again.created and again.id == result.id
    assert victim not in pool_images(session)
    # The earlier export still holds it: verify says so.
    report = verify_export(out, session)
    assert report.taken_down == [victim] and not report.ok
    # Exporting again into the same folder removes the file and the row.
    second = export(session, col, out)
    assert victim not in exported(out) and second.taken_down == 1 and second.removed_files >= 1
    assert not list(out.rglob(f"{victim}.jpg"))
    assert verify_export(out, session).ok
    # Revoking brings it back; the record stays.
    revoke_takedown(session, result.id, reason="licence confirmed")
    assert victim in pool_images(session)
    export(session, col, out)
    assert victim in exported(out)
    row = session.get(Takedown, result.id)
    assert row.revoked_at is not None and row.reason == "creator asked"
    assert list_takedowns(session) == []
    assert list_takedowns(session, include_revoked=True)[0]["revoked_at"]


def test_takedown_by_url_or_creator_withdraws_the_whole_image(session, col, tmp_path) -> None:
    cand = session.scalars(select(Candidate).order_by(Candidate.id)).first()
    image = session.get(Image, cand.image_id)
    result = add_takedown(session, kind="url", value=cand.url, reason="DMCA notice")
    assert result.images == 1
    assert image.sha256 not in pool_images(session)
    creator = "carol"
    by_carol = set(
        session.scalars(
            select(Image.sha256)
            .join(Candidate, Candidate.image_id == Image.id)
            .where(Candidate.creator == creator)
        )
    )
    assert by_carol
    result = add_takedown(session, kind="creator", value=creator, reason="opted out")
    assert result.images == len(by_carol)
    assert not by_carol & pool_images(session)
    export(session, col, tmp_path / "out")
    assert not (by_carol | {image.sha256}) & exported(tmp_path / "out")


@pytest.mark.parametrize(
    ("kind", "value", "reason", "error"),
    [
        ("sha256", "abc", "x", InvalidInput),
        ("url", "  ", "x", InvalidInput),
        ("name", "x", "x", InvalidInput),
        ("creator", "bob", " ", InvalidInput),
    ],
)
def test_bad_takedowns_are_refused(session, kind, value, reason, error) -> None:
    with pytest.raises(error):
        add_takedown(session, kind=kind, value=value, reason=reason)


def test_revoking_an_unknown_takedown_is_not_found(session) -> None:
    with pytest.raises(NotFound):
        revoke_takedown(session, 999_999, reason="")
