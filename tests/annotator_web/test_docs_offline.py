"""/docs and /redoc render in a real Chromium that can reach nothing but the app
(issue 20, item 14): their scripts and styles come from the app (fastapi-offline's
bundled files), not a CDN."""

from __future__ import annotations

import httpx

from synset_builder.config import Settings
from tests.annotator_web.webtools import BROWSER_MARKS, launch_chromium
from tests.reliability.live_server import LiveServer

pytestmark = BROWSER_MARKS


def test_api_docs_render_with_no_network(db_factory, tmp_path) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    cfg = Settings(database_url=db_factory.migrated("sqlite"), data_dir=tmp_path / "data")
    server = LiveServer(cfg, tmp_path / "server.log")
    server.start()
    outside: list[tuple[str, str]] = []

    def app_only(route: Route) -> None:
        """Every request that leaves the app is refused and noted: no network at all."""
        if route.request.url.startswith(f"{server.base}/"):
            route.continue_()
        else:
            outside.append((route.request.resource_type, route.request.url))
            route.abort("internetdisconnected")

    try:
        spec = httpx.get(f"{server.base}/openapi.json").json()
        api_paths = {p for p in spec["paths"] if p.startswith("/api/")}
        assert {"/api/tasks/next", "/api/votes", "/api/session"} <= api_paths
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            context = browser.new_context()
            context.route("**/*", app_only)
            page = context.new_page()
            page.goto(f"{server.base}/docs")
            operations = page.locator(".opblock-summary-path[data-path]")
            expect(operations.first).to_be_visible(timeout=30000)
            shown = {
                operations.nth(i).get_attribute("data-path") for i in range(operations.count())
            }
            assert api_paths <= shown
            page.screenshot(path=str(tmp_path / "docs.png"))
            page.goto(f"{server.base}/redoc")
            expect(page.get_by_role("heading", name="Tasks Next").first).to_be_visible(
                timeout=30000
            )
            browser.close()
    finally:
        server.stop()
    # Nothing the pages need left the app. (ReDoc's bundle asks Redocly's site for the
    # small logo in its footer; offline it is simply not shown.)
    assert [(kind, url) for kind, url in outside if kind != "image"] == []
