"""``synset export``, ``synset verify`` and ``synset takedown`` as a user runs them."""

from __future__ import annotations

import json

import pytest

from synset_builder.db.session import make_engine, session_scope
from tests.export_data import build_collection


@pytest.fixture
def collection(settings, photos):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        col = build_collection(session, settings.data_dir, photos, per_class=5)
    engine.dispose()
    return col


def one_line(result) -> str:
    assert result.code != 0 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0]


def test_export_then_verify_catches_a_tampered_file(cli, collection, tmp_path) -> None:
    done = cli(
        "export", "out", "-f", "imagefolder", "-f", "webdataset", "--resize", "128",
        "--shard-size", "40KB", "--workers", "2", "--json",
    )  # fmt: skip
    assert done.code == 0, done.err
    # SYNSET_CONTACT unset: croissant.json names the tool's page for takedowns; say so.
    assert "warning: the takedown contact" in done.err and "SYNSET_CONTACT" in done.err
    report = json.loads(done.out)
    # Progress in a log: one line at 100%, no redraws (synset_builder/progress.py).
    (progress,) = [line for line in done.err.splitlines() if line.startswith("export: ")]
    assert progress.startswith("export: 100% ") and "\r" not in done.err, done.err
    assert (
        json.loads((tmp_path / "out" / "export.json").read_text())["counts"]["export_id"]
        == (report["export_id"])
    )
    assert report["classes"] == 4 and report["ambiguous"] == 1
    assert sum(report["splits"].values()) == report["images"]
    assert len(list((tmp_path / "out" / "webdataset").glob("train-*.tar"))) > 1
    ok = cli("verify", "out")
    assert ok.code == 0 and "OK" in ok.out, ok.out + ok.err
    victim = sorted((tmp_path / "out" / "train").rglob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes() + b"tampered")
    bad = cli("verify", "out")
    assert bad.code == 1
    assert f"checksum mismatch: {victim.relative_to(tmp_path / 'out').as_posix()}" in bad.out
    # Without a folder, every export the database recorded is checked.
    recorded = cli("verify", "--json")
    assert recorded.code == 1
    (entry,) = json.loads(recorded.out)
    assert entry["ok"] is False and entry["database_checked"] is True


def test_takedown_commands_and_verify_of_an_older_export(cli, collection, tmp_path) -> None:
    assert cli("export", "out", "--format", "csv").code == 0
    rows = (tmp_path / "out" / "manifest.csv").read_text().splitlines()[1:]
    assert rows and not (tmp_path / "out" / "train").exists()
    sha = rows[0].split(",")[4]
    done = cli("takedown", "--sha256", sha, "--reason", "the photographer asked")
    assert done.code == 0 and "Recorded takedown 1" in done.out, done.err
    flagged = cli("verify", "out")
    assert flagged.code == 1 and f"image {sha} has been taken down" in flagged.out
    listing = cli("takedown", "--list", "--json")
    assert json.loads(listing.out)[0]["value"] == sha
    assert "Revoked takedown 1" in cli("takedown", "--revoke", "1").out
    assert cli("verify", "out").code == 0
    assert "exactly one of" in one_line(cli("takedown", "--reason", "nothing named"))
    assert "--splits" in one_line(cli("export", "other", "--splits", "0.5,0.5"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not an export")
    assert "not empty" in one_line(cli("export", "mine"))
    assert "format" in one_line(cli("export", "x", "--format", "tfrecord"))


def test_export_with_nothing_accepted_says_so(cli, tmp_path) -> None:
    line = one_line(cli("export", "out"))
    assert line.endswith(
        "Nothing to export: no image is accepted yet; run 'synset consensus' first."
    )
    assert not (tmp_path / "out").exists()


def test_an_empty_export_names_what_emptied_it_and_leaves_no_folder(
    cli, collection, tmp_path
) -> None:
    """The first user trial: both ended '...; run synset consensus first.' although it had
    run, and each left an empty OUT behind."""
    line = one_line(cli("export", "new/out", "--licenses", "pdm"))
    assert "--licenses pdm keeps none of them (their licences: " in line
    assert "cc0" in line and "synset consensus" not in line
    line = one_line(cli("export", "new/out", "--min-per-class", "100"))
    assert "classes have fewer than --min-per-class 100 images (the largest has " in line
    assert "synset consensus" not in line
    line = one_line(cli("export", "new/out", "--licenses", "cc0,bogus"))
    assert line.endswith("unknown licence 'bogus'; known: by, by-nc, by-nc-nd, by-nc-sa, "
                         "by-nd, by-sa, cc0, pdm, public-domain.")  # fmt: skip
    assert not (tmp_path / "new").exists()
    # A folder that was there stays, and a licence named in any spelling is accepted.
    (tmp_path / "mine").mkdir()
    assert "keeps none" in one_line(cli("export", "mine", "--licenses", "PDM 1.0"))
    assert (tmp_path / "mine").is_dir()
