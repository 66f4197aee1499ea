"""The voting page in a real Chromium: phone and laptop layouts, and undo of a page.

Against ``synset serve`` on PostgreSQL, as tests/annotator_web/test_browser.py. The
screenshots are saved under pytest's tmp_path (and copied to $TMPDIR as
synset-layout-*.png) for a person to look at; the assertions measure the layout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import func, select

from synset_builder.db.models import Vote, VoteUndone
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import (
    BROWSER_MARKS,
    PASSWORD,
    launch_chromium,
)

LAPTOPS = ((1366, 768), (1280, 800), (1440, 900))
WAIT = 30_000  # ms: a loaded test machine serves a page slowly

pytestmark = BROWSER_MARKS

# Where each tile and its picture are, what covers the bottom, and whether the page
# scrolls sideways: what the layout assertions read.
MEASURE = """() => {
  const bar = document.querySelector('.submitbar').getBoundingClientRect();
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
    barTop: bar.top,
    tiles: Array.from(document.querySelectorAll('.tile')).map((t) => {
      const r = t.getBoundingClientRect();
      const img = t.querySelector('img');
      return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width,
              fit: getComputedStyle(img).objectFit, natural: img.naturalWidth};
    }),
    tools: Array.from(document.querySelectorAll('.tile .tool')).map((b) => {
      const r = b.getBoundingClientRect();
      return {width: r.width, height: r.height, opacity: getComputedStyle(b.parentNode).opacity};
    }),
    logout: document.querySelector('.who button').getBoundingClientRect().right,
  };
}"""


def _log_in(page, base: str) -> None:
    page.goto(f"{base}/task")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready]")


def _loaded(page, first: int = 24) -> None:
    """Wait for the pictures of the first tiles (the rest of a phone's load lazily)."""
    page.wait_for_function(
        f"Array.from(document.querySelectorAll('.tile img')).slice(0, {first})"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    shutil.copy(path, Path(os.environ.get("TMPDIR", "/tmp")) / f"synset-layout-{name}.png")


def test_phone_width_has_no_sideways_scroll(server, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
            device_scale_factor=1,
        )  # fmt: skip
        page = context.new_page()
        _log_in(page, base)
        _loaded(page, 12)
        got = page.evaluate(MEASURE)
        _shot(page, tmp_path, "phone-390")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        _shot(page, tmp_path, "phone-390-bottom")
        # A tap selects a tile; the large view opens from its tool and fits the screen.
        page.locator(".tile").nth(23).tap()
        selected = page.locator(".tile.selected").count()
        page.locator(".tile").nth(22).locator(".zoom").tap()
        page.locator("dialog#viewer img").evaluate("i => i.decode()")
        viewer = page.locator("dialog#viewer").bounding_box()
        _shot(page, tmp_path, "phone-390-viewer")
        browser.close()
    assert selected == 1
    assert viewer["x"] >= 0 and viewer["x"] + viewer["width"] <= 390
    assert viewer["y"] >= 0 and viewer["y"] + viewer["height"] <= 844
    assert got["innerWidth"] == 390
    assert got["scrollWidth"] <= got["innerWidth"]
    assert got["logout"] <= got["innerWidth"]  # "Log out" is not clipped
    assert len(got["tiles"]) == 24
    for tile in got["tiles"]:
        assert tile["left"] >= 0 and tile["right"] <= got["innerWidth"]
        assert tile["width"] >= 140  # a finger can hit it and an eye can judge it
        assert tile["fit"] == "contain"
    # No hover on a touch screen: the tools show, each at least 40 px square.
    assert all(t["opacity"] == "1" and min(t["width"], t["height"]) >= 40 for t in got["tools"])


def test_laptop_sizes_show_a_whole_page_letterboxed(server, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = server
    sizes = {}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": LAPTOPS[0][0], "height": LAPTOPS[0][1]})
        _log_in(page, base)
        for width, height in LAPTOPS:
            page.set_viewport_size({"width": width, "height": height})
            page.reload()  # the same page (a reload re-serves the held items)
            page.wait_for_selector("body[data-ready]")
            _loaded(page)
            sizes[width, height] = page.evaluate(MEASURE)
            _shot(page, tmp_path, f"laptop-{width}x{height}")
        browser.close()
    for (width, height), got in sizes.items():
        assert got["scrollWidth"] <= got["innerWidth"], (width, height)
        assert len(got["tiles"]) == 24
        for tile in got["tiles"]:
            # In view without scrolling and not under the fixed submit bar.
            assert tile["top"] >= 0 and tile["bottom"] <= got["barTop"], (width, height, tile)
            assert tile["right"] <= got["innerWidth"]
            assert tile["width"] >= 120, (width, height)
            assert tile["fit"] == "contain" and tile["natural"] > 0


def test_undo_the_page_just_submitted(server, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, engine = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        _log_in(page, base)
        first = page.locator(".tile").evaluate_all("ts => ts.map(t => Number(t.dataset.id))")
        page.keyboard.press("Space")
        page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text("Saved 24 votes", timeout=WAIT)
        expect(page.locator("#undo")).to_be_visible(timeout=WAIT)
        page.wait_for_selector("body[data-ready]")  # task.js listens for Z
        _shot(page, tmp_path, "after-submit")
        with session_scope(engine) as s:
            assert s.scalar(select(func.count()).select_from(Vote)) == 24
        page.keyboard.press("z")
        expect(page.locator(".flash.ok")).to_contain_text("Took back 24 votes", timeout=WAIT)
        expect(page).to_have_url(f"{base}/task")  # the counts are the server's flash
        expect(page.locator("#undo")).to_have_count(0, timeout=WAIT)
        again = page.locator(".tile").evaluate_all("ts => ts.map(t => Number(t.dataset.id))")
        assert sorted(again) == sorted(first)
        # Submitted again, then undone by the button this time.
        page.wait_for_selector("body[data-ready]")
        page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text("Saved 24 votes", timeout=WAIT)
        page.wait_for_selector("body[data-ready]")
        page.locator("#undo").click()
        expect(page.locator(".flash.ok")).to_contain_text("Took back 24 votes", timeout=WAIT)
        browser.close()
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 0
        undone = s.execute(select(VoteUndone.candidate_id, VoteUndone.answer)).all()
    assert len(undone) == 48
    assert {c for c, a in undone if a} == {first[0]}  # Space selected the first tile
