"""The downloader against a real HTTP server on 127.0.0.1 serving real photos."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from synset_builder.crawl import local, store
from synset_builder.db.models import Candidate, Consensus, FetchFailure, Image
from synset_builder.db.session import make_engine, session_scope
from synset_builder.status import funnel
from tests.crawl_support import add_target, run_crawl, snapshot, url_list
from tests.photo_server import PhotoServer


@pytest.fixture
def server() -> Iterator[PhotoServer]:
    with PhotoServer(slow_seconds=2.0) as srv:
        yield srv


@pytest.fixture
def db(settings):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def private_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNSET_ALLOW_PRIVATE_NETWORKS", "1")


@pytest.mark.parametrize("processes", [1, 2])
def test_every_bad_case_is_a_failure_row_with_its_reason(
    settings, db, server, tmp_path, private_ok, processes: int
) -> None:
    add_target(db, "n01440764", "tench")
    name = server.names[0]
    good = [f"/photos/{name}", f"/png/{name}", f"/webp/{server.names[4]}", "/flaky/x"]
    good += ["/same/a.jpg", "/same/b.jpg", "/ratelimit/y"]
    bad = {
        "/missing.jpg": "http_404",
        "/slow.jpg": "timeout",
        "/html.jpg": "not_an_image",
        "/truncated.jpg": "truncated",
        "/big.jpg": "too_large",
        "/bomb.png": "decompression_bomb",
        "/loop/a": "redirect_loop",
        "/noai.jpg": "robots",
    }
    urls = url_list(tmp_path / "u.csv", [("n01440764", server.url(p)) for p in good + list(bad)])
    tallies = run_crawl(
        settings.with_overrides(allow_private_networks=True),
        [f"urls:{urls}"],
        # 1.5 s: well under /slow.jpg's 3 s, and not so short that a 404 from a busy
        # machine's server times out (at 0.5 s it did, under a load average of 8).
        fetch={"read_timeout": 1.5, "retries": 1, "max_bytes": 1_000_000, "allow_private": True},
        processes=processes,
    )
    fails = {f.url.removeprefix(server.url("")): f for f in db.scalars(select(FetchFailure))}
    assert {p: f.reason for p, f in fails.items()} == bad
    assert fails["/slow.jpg"].attempts == 2 and fails["/missing.jpg"].attempts == 1
    cands = db.scalars(select(Candidate)).all()
    # /same/b.jpg holds the bytes of /same/a.jpg and of photos[0]: one candidate for all.
    assert sorted(c.url.removeprefix(server.url("")) for c in cands) == sorted(
        [f"/photos/{name}", f"/png/{name}", f"/webp/{server.names[4]}"]
    )
    formats = {i.format for i in db.scalars(select(Image))}
    assert formats == {"jpeg", "png", "webp"}
    assert server.requests["/flaky/x"] == 2 and server.requests["/ratelimit/y"] == 2
    assert tallies["urls"].duplicate == 4 and tallies["urls"].downloaded == 3
    assert sum(tallies["urls"].failed.values()) == len(bad)
    counts = funnel(db)[0].counts
    assert counts["candidates"] == 3 and counts["failed"] == len(bad)
    for image in db.scalars(select(Image)):
        assert (settings.data_dir / image.path).is_file()


@pytest.mark.parametrize("processes", [1, 2])
def test_guard_refuses_loopback_without_asking_it(
    settings, db, server, tmp_path, processes: int
) -> None:
    add_target(db, "n01440764", "tench")
    urls = url_list(tmp_path / "u.csv", [("n01440764", server.url("/photos/" + server.names[0]))])
    run_crawl(settings, [f"urls:{urls}"], processes=processes)
    assert [f.reason for f in db.scalars(select(FetchFailure))] == ["private_address"]
    assert sum(server.requests.values()) == 0
    assert db.scalars(select(Candidate)).all() == []


def test_same_bytes_for_two_synsets_is_one_image_two_candidates(
    settings, db, server, tmp_path, private_ok
) -> None:
    add_target(db, "n01440764", "tench")
    add_target(db, "n02084071", "dog")
    urls = url_list(
        tmp_path / "u.csv",
        [("n01440764", server.url("/same/a.jpg")), ("n02084071", server.url("/same/b.jpg"))],
    )
    run_crawl(settings, [f"urls:{urls}"], fetch={"allow_private": True})
    assert len(db.scalars(select(Image)).all()) == 1
    assert len(db.scalars(select(Candidate)).all()) == 2


def test_quota_rerun_and_retry_failed(settings, db, server, tmp_path) -> None:
    tench = add_target(db, "n01440764", "tench")
    rows = [("n01440764", server.url("/flaky/z"))]
    # /flaky/z serves the bytes of names[0], which is not in the list.
    rows += [("n01440764", server.url(f"/photos/{n}")) for n in server.names[1:9]]
    urls = url_list(tmp_path / "u.csv", rows)
    fetch = {"allow_private": True, "retries": 0}
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=5)
    first = snapshot(settings)
    assert len(first["candidates"]) == 5
    # The shortest prefix of the list holding 5 images: the failed flaky URL + 5 photos.
    assert [f[2] for f in first["failures"]] == ["http_500"]
    served = sum(server.requests.values())
    assert served == 6

    # Running again changes nothing and downloads nothing.
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=5)
    assert snapshot(settings) == first and sum(server.requests.values()) == served

    # A larger quota continues the same list.
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=7)
    assert len(snapshot(settings)["candidates"]) == 7

    tallies = run_crawl(settings, [f"urls:{urls}"], fetch=fetch, retry_failed=True)
    assert tallies["urls"].downloaded == 1
    after = snapshot(settings)
    assert after["failures"] == [("n01440764", server.url("/flaky/z"), "http_500", 1, True)]
    assert funnel(db)[0].counts["failed"] == 0
    assert len(after["candidates"]) == 8
    assert db.scalar(select(Candidate.query).where(Candidate.synset_id == tench.id)) is None


def test_refill_uses_the_acceptance_rate(settings, db, server, tmp_path) -> None:
    tench = add_target(db, "n01440764", "tench")
    urls = url_list(
        tmp_path / "u.csv", [("n01440764", server.url(f"/photos/{n}")) for n in server.names[:12]]
    )
    fetch = {"allow_private": True}
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=4)
    cands = db.scalars(select(Candidate).order_by(Candidate.rank)).all()
    for cand, decision in zip(cands, ["accepted", "rejected", "accepted", "rejected"], strict=True):
        db.add(Consensus(candidate_id=cand.id, p_yes=0.5, decision=decision, method="majority"))
    tench.goal = 4
    db.add(tench)
    db.commit()
    # 2 of 4 accepted: reaching 4 accepted needs 4 more candidates.
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=100, refill=True)
    assert len(db.scalars(select(Candidate)).all()) == 8
    # Full now at that rate: another refill adds nothing.
    run_crawl(settings, [f"urls:{urls}"], fetch=fetch, per_synset=100, refill=True)
    assert len(db.scalars(select(Candidate)).all()) == 8


def test_dir_source_imports_in_place(settings, db, tmp_path, photos) -> None:
    add_target(db, "n01440764", "tench")
    folder = tmp_path / "collection" / "Tench"
    folder.mkdir(parents=True)
    for p in photos[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    run_crawl(settings, [f"dir:{tmp_path / 'collection'}"])
    paths = sorted(i.path for i in db.scalars(select(Image)))
    assert paths == sorted(str(folder / p.name) for p in photos[:3])
    assert not (settings.data_dir / "images").exists()
    assert {c.source for c in db.scalars(select(Candidate))} == {"dir"}


def test_max_side_stores_a_downscaled_copy(settings, db, server, tmp_path) -> None:
    add_target(db, "n01440764", "tench")
    urls = url_list(tmp_path / "u.csv", [("n01440764", server.url(f"/photos/{server.names[2]}"))])
    run_crawl(settings, [f"urls:{urls}"], fetch={"allow_private": True, "max_side": 64})
    image = db.scalars(select(Image)).one()
    assert max(image.width, image.height) == 64 and image.format == "jpeg"
    stored = (settings.data_dir / image.path).read_bytes()
    assert len(stored) == image.bytes < len(server.photos[server.names[2]])


@pytest.mark.parametrize("processes", [1, 2])
def test_per_host_cap_bounds_connections_to_one_host(settings, db, tmp_path, processes) -> None:
    add_target(db, "n01440764", "tench")
    with PhotoServer(delay=0.05) as slow:
        rows = [("n01440764", slow.url(f"/u/{i}/photos/{slow.names[0]}")) for i in range(12)]
        urls = url_list(tmp_path / "u.csv", rows)
        run_crawl(
            settings,
            [f"urls:{urls}"],
            fetch={"allow_private": True, "per_host": 2},
            concurrency=8,
            processes=processes,
        )
        assert slow.max_active <= 2
    assert len(db.scalars(select(Candidate)).all()) == 12


@pytest.mark.parametrize("processes", [1, 2])
def test_every_committed_image_file_was_synced_before_its_commit(
    settings, db, server, tmp_path, private_ok, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """The local crawl does not fsync file by file: a batch's sync must precede its commit.

    Each sync notes the files present before it (those it made durable); each commit
    checks that every image row it makes durable names one of them. With worker
    processes the files are written there and synced by the driver.
    """
    add_target(db, "n01440764", "tench")
    db.commit()
    synced: set[str] = set()

    def sync_and_note(where):  # noqa: ANN001, ANN202 - the executor's call, as it is
        present = {str(p.relative_to(where)) for p in (where / "images").rglob("*.*")}
        store.sync_store(where)
        synced.update(present)

    unsynced: list[set[str]] = []

    def before_commit(session: Session) -> None:
        paths = set(session.scalars(select(Image.path)))
        if paths:
            unsynced.append(paths - synced)

    monkeypatch.setattr(local, "sync_store", sync_and_note)
    rows = [("n01440764", server.url(f"/u/{i}/photos/{server.names[i % 20]}")) for i in range(120)]
    urls = url_list(tmp_path / "u.csv", rows)
    event.listen(Session, "before_commit", before_commit)
    try:
        tallies = run_crawl(
            settings.with_overrides(allow_private_networks=True),
            [f"urls:{urls}"],
            fetch={"allow_private": True},
            commit_every=16,
            processes=processes,
        )
    finally:
        event.remove(Session, "before_commit", before_commit)
    assert tallies["urls"].downloaded == 120
    # Several batches were committed, each naming only files synced before it.
    assert len(unsynced) >= 2 and all(not left for left in unsynced), unsynced
    assert len(synced) == 120
