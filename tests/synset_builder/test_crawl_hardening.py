"""The crawler against hosts that attack it (issue 19, crawl items 1-4).

Every hostile server listens on a 127.0.0.0/8 address, and the DNS answers that
change come from a resolver handed to the fetcher: no traffic leaves loopback,
even where the product would be wrong.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select

from synset_builder.config import load_settings
from synset_builder.crawl.fetch import Failed, FetchConfig, Fetched, Fetcher
from synset_builder.crawl.guard import address_allowed
from synset_builder.crawl.sources import Hit
from synset_builder.db.models import Candidate, FetchFailure
from synset_builder.db.session import make_engine, session_scope
from synset_builder.errors import ConfigError
from tests.crawl_support import add_target, run_crawl, snapshot, url_list
from tests.hostile_servers import (
    DripServer,
    HostileApis,
    Recorder,
    ScriptedResolver,
    closed_port,
    recorders_on_one_port,
)
from tests.photo_server import PhotoServer

UA = "synset-builder-test/1 (+tests)"


@pytest.fixture(scope="module")
def server() -> Iterator[PhotoServer]:
    with PhotoServer() as srv:
        yield srv


@pytest.fixture
def db(settings):
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def fetcher(tmp_path: Path) -> Callable[..., Fetcher]:
    """A fetcher storing under the test's folder, private networks allowed (loopback)."""

    def make(resolve: ScriptedResolver | None = None, **cfg: object) -> Fetcher:
        config = FetchConfig(user_agent=UA, allow_private=True, backoff=0.01, **cfg)  # type: ignore[arg-type]
        data = tmp_path / "fetched"
        return Fetcher(config, data) if resolve is None else Fetcher(config, data, resolve=resolve)

    return make


def get(f: Fetcher, url: str) -> Fetched | Failed:
    return f.fetch(Hit(url, "urls", None, 1))


# --- 1. a wall-clock deadline per download ---------------------------------------------


@pytest.mark.parametrize("phase", ["headers", "body", "close"])
def test_a_drip_is_cut_at_the_deadline_in_any_phase(
    server: PhotoServer, phase: str, fetcher
) -> None:
    """Each byte comes well within the read timeout; only the deadline can stop it.

    ``close``: the body has no length, so the cut-off stream ends like a whole one;
    it must still count as a timeout, not as a (truncated) image.
    """
    photo = server.photos[server.names[1]]
    with DripServer(photo, phase=phase) as drip:
        out = get(fetcher(read_timeout=5.0, deadline=0.5, retries=2), drip.url())
        assert isinstance(out, Failed), "the whole dripped file was taken"
        assert (out.reason, out.attempts) == ("timeout", 1)
        assert "deadline" in out.detail
        assert sum(drip.requests.values()) == 1  # not retried in the same run


def test_crawl_of_a_drip_and_a_good_url_stores_the_good_one(
    cli, settings, db, server, tmp_path, monkeypatch
) -> None:
    """``synset crawl`` with SYNSET_DOWNLOAD_DEADLINE: the drip fails as ``timeout``
    once, the good photo beside it is stored; ``--retry-failed`` tries the drip again."""
    add_target(db, "n01440764", "tench")
    good = server.url(f"/photos/{server.names[0]}")
    with DripServer(server.photos[server.names[1]]) as drip:
        urls = url_list(tmp_path / "u.csv", [("n01440764", drip.url()), ("n01440764", good)])
        monkeypatch.setenv("SYNSET_ALLOW_PRIVATE_NETWORKS", "1")
        monkeypatch.setenv("SYNSET_DOWNLOAD_DEADLINE", "1")
        args = ("crawl", "--source", f"urls:{urls}", "--retries", "2", "--quiet", "--json")
        result = cli(*args)
        assert result.code == 0, result.err
        summary = json.loads(result.out)["urls"]
        assert (summary["downloaded"], summary["failed"]) == (1, {"timeout": 1})
        first = snapshot(settings)
        assert [c[2] for c in first["candidates"]] == [good]
        assert first["failures"] == [("n01440764", drip.url(), "timeout", 1, False)]
        assert sum(drip.requests.values()) == 1

        # The host answers at once now: a later run with --retry-failed takes it.
        assert cli(*args, "--retry-failed").code == 0
        after = snapshot(settings)
        assert sorted(c[2] for c in after["candidates"]) == sorted([good, drip.url()])
        assert after["failures"] == [("n01440764", drip.url(), "timeout", 1, True)]
        assert sum(drip.requests.values()) == 2


def test_deadline_setting_defaults_to_a_minute_and_must_be_positive(monkeypatch) -> None:
    assert load_settings().crawl.download_deadline == 60.0
    monkeypatch.setenv("SYNSET_DOWNLOAD_DEADLINE", "0")
    with pytest.raises(ConfigError, match="SYNSET_DOWNLOAD_DEADLINE"):
        load_settings()


# --- 2. provenance text is cleaned, kept whole or cut with a marker --------------------


@pytest.fixture
def hostile_apis() -> Iterator[HostileApis]:
    with HostileApis() as srv:
        yield srv


def test_long_and_nul_fields_from_the_apis_are_stored_clean(settings, db, hostile_apis) -> None:
    srv = hostile_apis
    cfg = settings.with_overrides(
        openverse_url=srv.url("/openverse"),
        wikimedia_url=srv.url("/wikimedia/w/api.php"),
        flickr_url=srv.url("/flickr/rest/"),
        flickr_key="test-key",
    )
    add_target(db, "n01440764", "tench", ["tench"])
    specs = ["openverse", "wikimedia", "flickr"]
    fetch = {"allow_private": True, "retries": 0}
    run_crawl(cfg, specs, fetch=fetch)

    name = "n01440764_tench.JPEG"
    rows = {c.source: c for c in db.scalars(select(Candidate))}
    assert sorted(rows) == sorted(specs)
    for k, source in enumerate(specs, 1):
        row = rows[source]
        assert row.url == srv.url(f"/u/{k}/photos/{name}")  # the trailing newline dropped
        assert row.creator.startswith("Jane Doe, with a very long biography with a very")
        assert len(row.creator) == 300 and row.creator.endswith("\u2026")
        assert row.title == "Titlewith controlchars and newlines"
    for source in ("openverse", "wikimedia"):
        assert len(rows[source].license) == 100 and rows[source].license.endswith("\u2026")
        assert rows[source].license.startswith("cc-by-sa and a licence text pasted in full")
    # Control characters at the ends of a URL are dropped, inside it escaped (as browsers do).
    assert rows["openverse"].landing_url == srv.url(f"/landing/{name}")
    assert rows["wikimedia"].landing_url == srv.url(f"/wiki/File:{name}")

    fails = db.scalars(select(FetchFailure).order_by(FetchFailure.source)).all()
    assert [(f.source, f.reason) for f in fails] == [(s, "http_404") for s in sorted(specs)]
    for f in fails:
        assert f.url == srv.url(f"/photos/{name}%00{specs.index(f.source) + 1}")
        assert len(f.creator) == 300 and "\x00" not in f.creator

    # Reruns: nothing asked twice, nothing changed; --retry-failed fails cleanly again.
    before, served = snapshot(cfg), sum(srv.requests.values())
    db.expire_all()
    run_crawl(cfg, specs, fetch=fetch)
    assert snapshot(cfg) == before and sum(srv.requests.values()) == served
    run_crawl(cfg, specs, fetch=fetch, retry_failed=True)
    assert [f[3] for f in snapshot(cfg)["failures"]] == [2, 2, 2]


# --- 3. DNS rebinding: connect where the check looked, every time -----------------------


def test_connects_to_the_checked_address_and_keeps_the_host_name(
    server: PhotoServer, fetcher
) -> None:
    """The host name resolves differently for each download; each goes where its own
    check looked (never to the system's answer, never over the earlier connection)."""
    photo = server.photos[server.names[0]]
    first, second = recorders_on_one_port(photo, ["127.0.0.2", "127.0.0.3"])
    resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.3"])
    with first, second:
        f = fetcher(resolver)
        base = f"http://localhost:{first.port}"
        assert isinstance(get(f, base + "/a.jpg"), Fetched)
        assert isinstance(get(f, base + "/b.jpg"), Fetched)
    host = f"localhost:{first.port}"
    assert first.hosts == [("/a.jpg", host)] and second.hosts == [("/b.jpg", host)]
    assert resolver.asked == [("localhost", first.port)] * 2


def test_a_later_answer_is_checked_again(server: PhotoServer, fetcher) -> None:
    """No verdict is cached per host: the second lookup adds a metadata address."""
    photo = server.photos[server.names[0]]
    resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.2", "169.254.169.254"])
    with Recorder(photo, "127.0.0.2") as rec:
        f = fetcher(resolver, retries=0)
        assert isinstance(get(f, f"http://localhost:{rec.port}/a.jpg"), Fetched)
        out = get(f, f"http://localhost:{rec.port}/b.jpg")
    assert isinstance(out, Failed) and out.reason == "private_address"
    assert "169.254.169.254" in out.detail
    assert [path for path, _ in rec.hosts] == ["/a.jpg"]


def test_every_redirect_hop_is_resolved_and_checked(server: PhotoServer, fetcher) -> None:
    photo = server.photos[server.names[0]]
    resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.2", "169.254.169.254"])
    with Recorder(photo, "127.0.0.2") as rec:
        rec.redirect = f"http://localhost:{rec.port}/photo.jpg"
        out = get(fetcher(resolver, retries=0), f"http://localhost:{rec.port}/hop")
    assert isinstance(out, Failed) and out.reason == "private_address"
    assert [path for path, _ in rec.hosts] == ["/hop"]
    assert len(resolver.asked) == 2


def test_tls_checks_the_certificate_of_the_host_name(
    server, monkeypatch, tmp_path, fetcher
) -> None:
    """Pinned to an address, TLS still sends the name (SNI) and verifies it."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    photo = server.photos[server.names[0]]
    for cert_name, expected in (("localhost", Fetched), ("elsewhere.test", Failed)):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(cert_name).configure_cert(context)
        with Recorder(photo, "127.0.0.2", tls=context) as rec:
            out = get(
                fetcher(ScriptedResolver(["127.0.0.2"]), retries=0),
                f"https://localhost:{rec.port}/a.jpg",
            )
        assert isinstance(out, expected), out
        assert rec.sni == ["localhost"]
    assert isinstance(out, Failed) and "Hostname mismatch" in out.detail


# --- 4. link-local and metadata addresses stay refused with private networks on --------

REFUSED_ALWAYS = [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack metadata
    "169.254.0.1",
    "fe80::1",
    "fe80::1%lo",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",  # NAT64
    "2002:a9fe:a9fe::1",  # 6to4
    "::169.254.169.254",  # IPv4-compatible
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
    "168.63.129.16",  # Azure WireServer
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "255.255.255.255",
    "not an address",
]


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_link_local_and_metadata_refused_even_with_private_networks(address: str) -> None:
    assert not address_allowed(address, allow_private=True)
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "::1", "fd12::1"])
def test_private_networks_setting_opens_intranet_ranges_only(address: str) -> None:
    assert address_allowed(address, allow_private=True)
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(address, allow_private=False)


def test_metadata_in_an_answer_refuses_the_host_with_private_networks(server, fetcher) -> None:
    photo = server.photos[server.names[0]]
    with Recorder(photo, "127.0.0.2") as rec:
        resolver = ScriptedResolver(["127.0.0.2", "169.254.169.254"])
        out = get(fetcher(resolver, retries=0), f"http://localhost:{rec.port}/a.jpg")
    assert isinstance(out, Failed) and out.reason == "private_address"
    assert rec.hosts == []


def test_connection_refused_is_a_connection_error_not_a_timeout(fetcher) -> None:
    out = get(fetcher(retries=0), f"http://127.0.0.1:{closed_port()}/a.jpg")
    assert isinstance(out, Failed) and out.reason == "connection_error"
