"""A real Chromium: a curator judges a review page from the keyboard (uvicorn + PostgreSQL)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.db.models import Annotator, Consensus, ExpertDecision, Vote
from synset_builder.db.session import make_engine, session_scope
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
