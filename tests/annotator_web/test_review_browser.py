"""A real Chromium: a curator judges a review page from the keyboard, and by tapping a
tile's Yes / No on a phone (uvicorn + PostgreSQL)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.db.models import (
    Annotator,
    AuditSample,
    Candidate,
    Consensus,
    ExpertDecision,
    Synset,
    Vote,
)
from synset_builder.db.session import make_engine, session_scope
from synset_builder.review import audit
from tests.annotator_web.webtools import (
    BROWSER_MARKS,
    PASSWORD,
    SYNSET,
    free_port,
    launch_chromium,
    seed,
    wait_for_server,
)

pytestmark = BROWSER_MARKS


def test_judge_a_review_page_with_the_keyboard(db_factory, photos, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # 8 engineers share 2 cores: saves can take seconds
    cfg = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "data")
    engine = make_engine(cfg.database_url)
    seeded = seed(engine, cfg, photos, n=30)
    with session_scope(engine) as s:  # every item accepted on two yes votes
        voters = list(s.scalars(select(Annotator.id).where(Annotator.role == "annotator")))
        for cid in seeded.candidate_ids:
            s.add(Consensus(candidate_id=cid, p_yes=0.96, decision="accepted", method="dynamic"))
            s.add_all(Vote(candidate_id=cid, annotator_id=a, answer=True) for a in voters)
    port = free_port()
    env = {**os.environ, "SYNSET_DATABASE_URL": cfg.database_url,
           "SYNSET_DATA_DIR": str(cfg.data_dir)}  # fmt: skip
    server = subprocess.Popen([SYNSET, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/login", server)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/review/{seeded.wnid}?decision=accepted")
            page.fill("input[name=username]", "cur")
            page.fill("input[name=password]", PASSWORD)
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base}/review/{seeded.wnid}?decision=accepted")
            tiles = page.locator(".rtile")
            expect(tiles).to_have_count(24)
            expect(page.locator("h1")).to_contain_text("whippet")
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.rtile img')).slice(0, 8)"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            # review.js is deferred: its last act focuses the first tile. Keys pressed
            # before it ran (a cold server sends the script late) would go nowhere.
            expect(tiles.nth(0)).to_have_class(re.compile(r"\bfocus\b"))
            ids = [int(x) for x in tiles.evaluate_all("ts => ts.map(t => t.dataset.id)")]
            assert ids == seeded.candidate_ids[:24]
            # Y on 0, N on 1, U skips 2, Y on 3; then down a row, V for a large view,
            # N from inside it; then the left arrow and Y on the item before it.
            for key in ("y", "n", "u", "y"):
                page.keyboard.press(key)
            expect(page.locator(".rtile.judged-yes")).to_have_count(2)
            expect(page.locator(".rtile.judged-no")).to_have_count(1)
            expect(tiles.nth(4)).to_have_class(re.compile(r"\bfocus\b"))
            columns = page.evaluate(
                "(() => { const t = [...document.querySelectorAll('.rtile')];"
                " return t.findIndex(x => x.offsetTop !== t[0].offsetTop); })()"
            )
            page.keyboard.press("ArrowDown")
            below = 4 + columns
            expect(tiles.nth(below)).to_have_class(re.compile(r"\bfocus\b"))
            page.keyboard.press("v")
            expect(page.locator("dialog#viewer")).to_be_visible()
            page.keyboard.press("n")
            expect(page.locator("dialog#viewer")).to_be_hidden()
            expect(tiles.nth(below)).to_have_class(re.compile(r"\bjudged-no\b"))
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("y")
            expect(page.locator("#n-judged")).to_have_text("5")
            expect(tiles.nth(below - 1)).to_contain_text("expert: yes")
            shot = tmp_path / "review.png"
            page.screenshot(path=str(shot))
            shutil.copy(shot, Path(os.environ.get("TMPDIR", "/tmp")) / "synset-review.png")
            browser.close()
        with session_scope(engine) as s:
            got = dict(s.execute(select(ExpertDecision.candidate_id, ExpertDecision.label)).all())
        assert got == {ids[0]: True, ids[1]: False, ids[3]: True, ids[below]: False,
                       ids[below - 1]: True}  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
        engine.dispose()


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _shot(page, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    shutil.copy(shot, Path(os.environ.get("TMPDIR", "/tmp")) / name)


def _log_in(browser, base: str, path: str, **context: object):  # type: ignore[no-untyped-def]
    page = browser.new_context(**context).new_page()
    page.goto(f"{base}{path}")
    page.fill("input[name=username]", "cur")
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{path}")
    # review.js is deferred: its last act focuses the first tile.
    page.wait_for_selector(".rtile.focus")
    return page


def test_judge_by_tapping_a_tile_on_a_phone_and_clicking_on_a_desktop(server, tmp_path) -> None:
    """A user trial: on a phone the keyboard hints are hidden and the tiles had no
    controls, so judging needed a double tap nobody found. Each tile has yes / no
    buttons now, a finger's size, that judge as Y / N do; the blind audit stays blind."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    base, engine = server
    with session_scope(engine) as s:  # the crowd accepted every item; then a blind audit
        wnid = s.scalar(select(Synset.wnid).where(Synset.target).limit(1))
        cids = list(s.scalars(select(Candidate.id).order_by(Candidate.id)))
        voters = list(s.scalars(select(Annotator.id).where(Annotator.role == "annotator")))
        for cid in cids:
            s.add(Consensus(candidate_id=cid, p_yes=0.96, decision="accepted", method="dynamic"))
            s.add_all(Vote(candidate_id=cid, annotator_id=a, answer=True) for a in voters)
        s.flush()
        audit.start(s, [wnid], n=4, seed=3)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        phone = _log_in(browser, base, f"/review/{wnid}", viewport=PHONE, has_touch=True)
        expect(phone.locator("#mode")).to_contain_text("Blind audit")
        tiles = phone.locator(".rtile")
        expect(tiles).to_have_count(4)
        audited = [int(x) for x in tiles.evaluate_all("ts => ts.map(t => t.dataset.id)")]
        _shot(phone, "synset-review-phone.png", tmp_path)
        grid = phone.locator(".review-grid")
        # Blind: nothing on the tiles, their buttons included, tells the crowd's side.
        for word in ("accepted", "P(yes)", "votes", "expert"):
            assert word not in grid.inner_text()
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        buttons = grid.get_by_role("button")
        expect(buttons).to_have_count(8)
        assert [b.get_attribute("class") for b in buttons.all()] == ["yes", "no"] * 4
        for box in (b.bounding_box() for b in buttons.all()):
            assert box and box["width"] >= 44 and box["height"] >= 44, box
        # Tap "No" on the second tile (the first is focused), then "Yes" on the first.
        tiles.nth(1).get_by_role("button", name="No").tap()
        expect(tiles.nth(1)).to_have_class(re.compile(r"\bjudged-no\b"))
        expect(tiles.nth(2)).to_have_class(re.compile(r"\bfocus\b"))  # moves on, as N does
        expect(phone.locator("dialog#viewer")).to_be_hidden()
        tiles.nth(0).get_by_role("button", name="Yes").tap()
        expect(tiles.nth(0)).to_contain_text("expert: yes")
        expect(phone.locator("#n-judged")).to_have_text("2")
        _shot(phone, "synset-review-phone-judged.png", tmp_path)

        desk = _log_in(browser, base, f"/review/{wnid}?decision=accepted", viewport=DESKTOP)
        ids = [
            int(x) for x in desk.locator(".rtile").evaluate_all("ts => ts.map(t => t.dataset.id)")
        ]
        k = next(k for k in range(4, 20) if not {ids[k], ids[k + 1]} & set(audited))
        shown, after, last = ids[k], ids[k + 1], desk.locator(".rtile").nth(k)
        _shot(desk, "synset-review-desktop.png", tmp_path)
        last.get_by_role("button", name="No").click()
        expect(last.locator(".decision")).to_have_text("rejected (expert)")
        # The keyboard goes on from the next tile, as after N.
        desk.keyboard.press("y")
        expect(desk.locator("#n-judged")).to_have_text("2")
        _shot(desk, "synset-review-desktop-judged.png", tmp_path)
        browser.close()
    with session_scope(engine) as s:
        got = dict(s.execute(select(ExpertDecision.candidate_id, ExpertDecision.label)).all())
        judged = dict(
            s.execute(
                select(AuditSample.candidate_id, AuditSample.judged_label).where(
                    AuditSample.judged_label.is_not(None)
                )
            ).all()
        )
    assert got == {audited[1]: False, audited[0]: True, shown: False, after: True}
    assert judged == {audited[1]: False, audited[0]: True}
