"""The curator's pages on a phone, in a real Chromium: wide tables scroll inside their
card, the page itself never wider than the screen (a user trial found the dashboard
1,207 px wide on a 390 px phone, its header and buttons off screen)."""

from __future__ import annotations

import os
import shutil

from sqlalchemy import select

from synset_builder.db.models import Synset
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import BROWSER_MARKS, PASSWORD, launch_chromium

pytestmark = BROWSER_MARKS
PHONE = {"width": 390, "height": 844}
WAIT = 30_000  # ms: a loaded test machine serves a page slowly


def test_curator_pages_fit_a_phone(server, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    base, engine = server
    with session_scope(engine) as s:
        wnid = s.scalar(select(Synset.wnid).where(Synset.target).limit(1))
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport=PHONE)
        page.set_default_timeout(WAIT)
        page.goto(f"{base}/login?next=/dashboard")
        page.fill("input[name=username]", "cur")
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/dashboard")
        page.wait_for_load_state("load")
        for path in ("/dashboard", "/review", f"/review/{wnid}"):
            if not page.url.endswith(path):  # the login lands on the dashboard
                page.goto(f"{base}{path}")
            page.wait_for_selector("main")
            wide = page.evaluate("document.documentElement.scrollWidth")
            shot = tmp_path / f"curator-{path.strip('/').replace('/', '-')}-phone.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copy(shot, os.environ.get("TMPDIR", "/tmp"))
            assert wide <= PHONE["width"], f"{path} is {wide} px wide on a 390 px phone"
            # The wide table is still all there: it scrolls inside its card.
            if path == "/dashboard":
                table = page.locator("table.data").first
                assert table.evaluate("t => t.scrollWidth") > PHONE["width"] - 40
        browser.close()
