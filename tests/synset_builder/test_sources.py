"""Search sources against a local server answering in the real APIs' JSON shape."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.crawl.sources import SourceError, SynsetRef, make_source
from synset_builder.db.models import Candidate
from synset_builder.db.session import make_engine, session_scope
from synset_builder.errors import ConfigError, InvalidInput
from tests.crawl_support import add_target
from tests.photo_server import PhotoServer

TENCH = SynsetRef("n01440764", "tench", ("tench", "Tinca tinca"))


@pytest.fixture(scope="module")
def server() -> Iterator[PhotoServer]:
    with PhotoServer() as srv:
        yield srv


def api_settings(server: PhotoServer, **extra: object) -> Settings:
    return Settings(
        openverse_url=server.url("/openverse"),
        wikimedia_url=server.url("/wikimedia/w/api.php"),
        flickr_url=server.url("/flickr/rest/"),
        flickr_key="test-key",
        contact="curator@example.org",
        **extra,  # type: ignore[arg-type]
    )


def test_openverse_pages_and_provenance(server: PhotoServer) -> None:
    source = make_source("openverse", api_settings(server))
    page = source.search(TENCH, "tench", 1)
    assert page.last and len(page.hits) == 1
    hit = page.hits[0]
    assert hit.url == server.url("/photos/n01440764_tench.JPEG")
    assert (hit.license, hit.creator, hit.query, hit.rank) == (
        "by 4.0",
        "A. Photographer",
        "tench",
        1,
    )
    assert hit.landing_url == server.url("/landing/n01440764_tench.JPEG")
    params, headers = server.seen["/openverse/v1/images/"]
    assert params["mature"] == "false"
    assert "curator@example.org" in headers["User-Agent"]
    assert "Authorization" not in headers


def test_openverse_uses_client_credentials(server: PhotoServer) -> None:
    cfg = api_settings(server, openverse_client_id="me", openverse_client_secret="s3cret")
    make_source("openverse", cfg).search(TENCH, "tench", 1)
    assert server.seen["/openverse/v1/images/"][1]["Authorization"] == "Bearer tok-1"
    bad = api_settings(server, openverse_client_id="me", openverse_client_secret="wrong")
    with pytest.raises(SourceError, match="client credentials"):
        make_source("openverse", bad).search(TENCH, "tench", 1)


def test_wikimedia_pages_by_offset_and_strips_author_html(server: PhotoServer) -> None:
    source = make_source("wikimedia", api_settings(server))
    source.page_size = 1  # type: ignore[misc]
    first, second = source.search(TENCH, "n01", 1), source.search(TENCH, "n01", 2)
    assert not first.last and first.hits[0].url != second.hits[0].url
    assert second.hits[0].rank == 2
    hit = first.hits[0]
    assert (hit.license, hit.creator) == ("CC BY-SA 4.0", "Jane & Doe")
    assert hit.title == server.names[0]


def test_flickr_needs_a_key_and_filters_licences(server: PhotoServer) -> None:
    with pytest.raises(ConfigError, match="SYNSET_FLICKR_KEY"):
        make_source("flickr", api_settings(server).with_overrides(flickr_key=None))
    page = make_source("flickr", api_settings(server)).search(TENCH, "tench", 1)
    assert page.hits[0].license == "cc-by 2.0" and page.hits[0].creator == "flickr user"
    assert server.seen["/flickr/rest/"][0]["license"].split(",")[:2] == ["1", "2"]
    wrong = api_settings(server).with_overrides(flickr_key="nope")
    with pytest.raises(SourceError, match="Invalid API Key"):
        make_source("flickr", wrong).search(TENCH, "tench", 1)


def test_search_api_429_is_waited_out(server: PhotoServer) -> None:
    cfg = api_settings(server).with_overrides(openverse_url=server.url("/busy/openverse"))
    page = make_source("openverse", cfg).search(TENCH, "tench", 1)
    assert len(page.hits) == 1 and server.requests["/busy/openverse/v1/images/"] == 2


def test_unknown_source_and_bad_url_file(tmp_path, server: PhotoServer) -> None:
    with pytest.raises(InvalidInput, match="Unknown source"):
        make_source("bing", api_settings(server))
    bad = tmp_path / "bad.tsv"
    bad.write_text("n01440764\t\n")
    with pytest.raises(InvalidInput, match="Line 1"):
        make_source(f"urls:{bad}", api_settings(server)).search(TENCH, None, 1)


def test_crawl_command_with_openverse_and_wikimedia(
    cli, settings, server: PhotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        add_target(session, "n01440764", "tench", ["tench", "Tinca tinca"])
        add_target(session, "n01514668", "cock", ["cock"])
    monkeypatch.setenv("SYNSET_OPENVERSE_URL", server.url("/openverse"))
    monkeypatch.setenv("SYNSET_WIKIMEDIA_URL", server.url("/wikimedia/w/api.php"))
    monkeypatch.setenv("SYNSET_ALLOW_PRIVATE_NETWORKS", "1")
    done = cli("crawl", "--source", "openverse", "--source", "wikimedia", "--quiet", "--json")
    assert done.code == 0, done.err
    summary = json.loads(done.out)
    # "cock" also finds the peacock. Both services list the same URLs: the second
    # listing is recognised and not downloaded again.
    assert summary["openverse"]["downloaded"] == 3 and summary["wikimedia"]["already_known"] == 3
    with session_scope(engine) as session:
        cands = session.scalars(select(Candidate).order_by(Candidate.url)).all()
        assert {(c.source, c.query, c.license) for c in cands} == {
            ("openverse", "tench", "by 4.0"),
            ("openverse", "cock", "by 4.0"),
        }
    engine.dispose()
    status = json.loads(cli("status", "--json").out)
    counts = {row["wnid"]: row["counts"] for row in status}
    assert counts["n01440764"]["candidates"] == 1 and counts["n01440764"]["failed"] == 0
    assert counts["n01440764"]["queries"] == 2
    # Finished result pages are remembered: running again asks the services nothing.
    asked = server.requests["/openverse/v1/images/"] + server.requests["/wikimedia/w/api.php"]
    again = cli("crawl", "--source", "openverse", "--source", "wikimedia", "--quiet")
    assert again.code == 0 and "downloaded 0" in again.out
    assert (
        server.requests["/openverse/v1/images/"] + server.requests["/wikimedia/w/api.php"] == asked
    )
    bad = cli("crawl", "--synset", "n99999999")
    assert bad.code != 0 and "n99999999" in bad.err and "Traceback" not in bad.err


def test_unreachable_service_is_one_line(cli, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        add_target(session, "n01440764", "tench", ["tench", "Tinca tinca"])
    engine.dispose()
    monkeypatch.setenv("SYNSET_OPENVERSE_URL", "http://127.0.0.1:9")
    done = cli("crawl", "--quiet")
    assert done.code != 0
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0], done.err
