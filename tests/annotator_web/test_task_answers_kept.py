"""The voting page keeps an annotator's answers, in a real Chromium.

What a new-user trial lost: a page answered under a session that ended (it went to
the login form in silence and came back blank), the answers of a page brought back
by Undo (they came back all "no"), shortcuts typed with Caps Lock or Shift, and an
Undo button that outlived its window. Against ``synset serve`` on PostgreSQL, as
tests/annotator_web/test_task_layout.py; no test measures time, they wait for what
the page shows.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from synset_builder.db.models import Unsure, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import (
    BROWSER_MARKS,
    PASSWORD,
    launch_chromium,
)

WAIT = 30_000  # ms: a loaded test machine serves a page slowly
ENDED = "Your session ended; log in again: your answers on this page are kept."
IDS = "ts => ts.map(t => Number(t.dataset.id))"

pytestmark = BROWSER_MARKS


def _log_in(page, base: str) -> None:
    if "/login" not in page.url:
        page.goto(f"{base}/task")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready]")


def _answers(page) -> tuple[list[int], list[int]]:
    """The ids of the tiles shown as "yes" and as "unsure" (a page is served shuffled)."""
    return (
        sorted(page.locator(".tile.selected").evaluate_all(IDS)),
        sorted(page.locator(".tile.unsure").evaluate_all(IDS)),
    )


def _votes(engine) -> tuple[dict[int, bool], set[int]]:
    with session_scope(engine) as s:
        votes = dict(s.execute(select(Vote.candidate_id, Vote.answer)).all())
        return votes, set(s.scalars(select(Unsure.candidate_id)))


def test_a_page_answered_under_an_ended_session_is_kept(server, tmp_path) -> None:
    """Logged out on another device mid-page: Enter says so on the page, and after
    logging in again the same page comes back answered, waiting for the annotator."""
    from playwright.sync_api import expect, sync_playwright

    base, engine = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _log_in(page, base)
        ids = page.locator(".tile").evaluate_all(IDS)
        page.keyboard.press("Space")  # tile 0 yes, tile 2 yes, tile 3 unsure
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("x")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("u")
        before = _answers(page)
        assert before == (sorted([ids[0], ids[2]]), [ids[3]])
        other = pw.request.new_context(base_url=base)  # the other device logs out
        assert other.post("/api/session", data={"username": "ann", "password": PASSWORD}).ok
        assert other.delete("/api/session").ok
        other.dispose()

        page.keyboard.press("Enter")
        expect(page.locator("#problem")).to_be_visible(timeout=WAIT)
        expect(page.locator("#problem")).to_contain_text(ENDED)
        page.screenshot(path=str(tmp_path / "session-ended.png"))
        assert page.url == f"{base}/task"
        assert _answers(page) == before
        assert _votes(engine) == ({}, set())

        page.locator("#problem a").click()
        _log_in(page, base)
        assert sorted(page.locator(".tile").evaluate_all(IDS)) == sorted(ids)
        expect(page.locator("#restored")).to_be_visible()
        assert _answers(page) == before
        assert _votes(engine) == ({}, set())  # nothing is sent without a submit
        page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text("Saved 23 votes", timeout=WAIT)
        browser.close()
    assert _votes(engine) == ({c: c in before[0] for c in ids if c != ids[3]}, {ids[3]})


def test_undo_brings_the_page_back_as_it_was_sent(server, tmp_path) -> None:
    """One wrong tile should not mean answering the page again: after Undo its "yes"
    and "unsure" answers are shown as sent; the flash is said once, not on a reload."""
    from playwright.sync_api import expect, sync_playwright

    base, engine = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _log_in(page, base)
        ids = page.locator(".tile").evaluate_all(IDS)
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("u")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("x")
        sent = _answers(page)
        page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text("Saved 23 votes", timeout=WAIT)
        page.wait_for_selector("body[data-ready]")
        page.keyboard.press("z")
        expect(page.locator(".flash.ok")).to_contain_text("Took back 23 votes", timeout=WAIT)
        page.wait_for_selector("body[data-ready]")
        assert sorted(page.locator(".tile").evaluate_all(IDS)) == sorted(ids)
        assert _answers(page) == sent
        expect(page.locator("#n-yes")).to_have_text("2")
        page.screenshot(path=str(tmp_path / "undone.png"))
        page.reload()
        page.wait_for_selector("body[data-ready]")
        expect(page.locator(".statusline")).not_to_contain_text("Took back")
        assert _answers(page) == sent  # kept in the tab until it is sent again
        browser.close()
    assert _votes(engine) == ({}, set())


def test_shortcuts_work_with_shift_or_caps_lock(server) -> None:
    """The hint bar shows U, V, A, N; typed as capitals they do what the small ones do."""
    from playwright.sync_api import expect, sync_playwright

    base, _ = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _log_in(page, base)
        page.keyboard.press("Shift+KeyX")
        expect(page.locator("#n-yes")).to_have_text("1")
        page.keyboard.press("Shift+KeyL")  # vim-style move right
        page.keyboard.press("Shift+KeyU")
        expect(page.locator("#n-unsure")).to_have_text("1")
        page.keyboard.press("Shift+KeyA")
        expect(page.locator("#n-yes")).to_have_text("23")
        page.keyboard.press("Shift+KeyN")
        expect(page.locator("#n-yes")).to_have_text("0")
        page.keyboard.press("Shift+KeyV")
        expect(page.locator("dialog#viewer")).to_be_visible()
        page.keyboard.press("Shift+KeyX")  # "shows one" from the large view
        expect(page.locator("dialog#viewer")).to_be_hidden()
        expect(page.locator("#n-yes")).to_have_text("1")
        expect(page.locator(".tile").nth(1)).to_have_class(re.compile(r"\bselected\b"))
        browser.close()


def test_undo_past_its_window_is_gone_and_says_too_late(server, tmp_path) -> None:
    """The button leaves when its window closes (the stylesheet no longer keeps a
    hidden button on screen), and a late Z says why nothing happens."""
    from playwright.sync_api import expect, sync_playwright

    base, engine = server
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.clock.install()
        _log_in(page, base)
        page.keyboard.press("Enter")
        expect(page.locator("#undo")).to_be_visible(timeout=WAIT)
        page.wait_for_selector("body[data-ready]")
        page.clock.fast_forward(61_000)  # the page's clock only: the server's window is open
        expect(page.locator("#undo")).to_be_hidden()
        page.keyboard.press("Shift+KeyZ")
        expect(page.locator("#undo-error")).to_be_visible()
        expect(page.locator("#undo-error")).to_contain_text("Too late to undo")
        page.screenshot(path=str(tmp_path / "too-late.png"))
        browser.close()
    assert len(_votes(engine)[0]) == 24  # nothing was undone
