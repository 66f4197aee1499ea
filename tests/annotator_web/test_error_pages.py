"""A browser that asks for a page that is not there gets a page with a way home; the
API keeps answering JSON (issue 20, item 15)."""

from __future__ import annotations

from tests.annotator_web.webtools import Web

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _is_page(r, status: int) -> None:  # noqa: ANN001 - an httpx response
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert 'href="/"' in r.text and '"detail"' not in r.text


def test_unknown_address_in_a_browser_is_an_html_page_with_a_link_home(web: Web) -> None:
    for client in (web.client(), web.client("ann")):
        r = client.get("/no/such/page", headers=BROWSER)
        _is_page(r, 404)
        assert "Page not found" in r.text
    # A route's own 404 keeps its words.
    r = web.client("ann").get("/task?synset=n99999999", headers=BROWSER)
    _is_page(r, 404)
    assert "Unknown synset" in r.text
    # A form address opened as a page: 405, still a page, with the methods it takes.
    r = web.client("ann").get("/logout", headers=BROWSER)
    _is_page(r, 405)
    assert "POST" in r.headers["allow"]


def test_api_and_non_browser_clients_keep_json(web: Web) -> None:
    ann = web.client("ann")
    for path, headers in (
        ("/api/no/such", BROWSER),
        ("/no/such/page", {"accept": "application/json"}),
        ("/no/such/page", {}),
    ):
        r = ann.get(path, headers=headers)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "Not Found"}
    r = ann.get("/api/synsets/n99999999", headers=BROWSER)
    assert r.status_code == 404 and "Unknown synset" in r.json()["detail"]
    r = ann.get("/api/votes", headers=BROWSER)
    assert r.status_code == 405 and r.json() == {"detail": "Method Not Allowed"}


def test_a_bad_value_in_an_address_is_a_page_and_forbidden_says_so(web: Web) -> None:
    """A typo or an old bookmark (``?sort=bogus``, ``?page=-1``) is a page, not the
    validator's JSON; an annotator on a curator page gets a titled page too."""
    cur = web.client("cur")
    for path in ("/dashboard?sort=bogus", "/dashboard?page=-1",
                 f"/review/{web.seeded.wnid}?decision=bogus"):  # fmt: skip
        r = cur.get(path, headers=BROWSER)
        _is_page(r, 422)
        assert "Address not understood" in r.text
    api = cur.get("/api/review/next?n=abc", headers=BROWSER)
    assert api.status_code == 422 and "Invalid request" in api.json()["detail"]
    denied = web.client("ann").get("/dashboard", headers=BROWSER)
    _is_page(denied, 403)
    assert "Not allowed" in denied.text and "Error 403" not in denied.text
    # The header as on every page: who is logged in, and a way out.
    assert '<span class="name">ann</span>' in denied.text and "Log out" in denied.text
