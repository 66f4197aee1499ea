"""A real Chromium labels a page with the keyboard against uvicorn + PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.db.models import Consensus, Unsure, Vote
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


def test_label_a_page_with_the_keyboard(db_factory, photos, tmp_path) -> None:
    from playwright.sync_api import expect, sync_playwright

    cfg = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "data")
    engine = make_engine(cfg.database_url)
    seeded = seed(engine, cfg, photos, n=32)
    with session_scope(engine) as s:  # a few accepted examples for the header
        for cid in seeded.candidate_ids[-4:]:
            s.add(Consensus(candidate_id=cid, p_yes=0.99, decision="accepted", method="dynamic"))
    port = free_port()
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": cfg.database_url,
        "SYNSET_DATA_DIR": str(cfg.data_dir),
        "SYNSET_WEB_GOLD_FRACTION": "0",
    }
    server = subprocess.Popen([SYNSET, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/login", server)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/task")
            expect(page).to_have_url(f"{base}/login?next=/task")
            page.fill("input[name=username]", "ann")
            page.fill("input[name=password]", PASSWORD)
            page.keyboard.press("Enter")
            expect(page.locator(".tile")).to_have_count(24)
            expect(page.locator("h1")).to_contain_text("whippet")
            expect(page.locator(".path")).to_contain_text("hound")
            expect(page.locator("body[data-ready]")).to_have_count(1)  # task.js is running
            page.wait_for_function(
                "Array.from(document.querySelectorAll('.tile img')).slice(0, 12)"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            ids = [
                int(x)
                for x in page.locator(".tile").evaluate_all("ts => ts.map(t => t.dataset.id)")
            ]
            # Select tiles 0 and 2, mark tile 3 unsure, peek at tile 7 in the large view.
            page.keyboard.press("Space")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("x")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("u")
            expect(page.locator("#n-yes")).to_have_text("2")
            expect(page.locator("#n-unsure")).to_have_text("1")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("v")
            expect(page.locator("dialog#viewer")).to_be_visible()
            page.keyboard.press("Escape")
            expect(page.locator("dialog#viewer")).to_be_hidden()
            page.keyboard.press("ArrowUp")
            expect(page.locator(".tile").nth(3)).to_have_class(re.compile(r"\bfocus\b"))
            page.screenshot(path=str(tmp_path / "task.png"))
            shutil.copy(
                tmp_path / "task.png", Path(os.environ.get("TMPDIR", "/tmp")) / "synset-task.png"
            )
            page.keyboard.press("Enter")
            expect(page.locator(".flash.ok")).to_contain_text("Saved 23 votes")
            browser.close()
        with session_scope(engine) as s:
            got = dict(s.execute(select(Vote.candidate_id, Vote.answer)).all())
            skipped = set(s.scalars(select(Unsure.candidate_id)))
        assert got == {cid: k in (0, 2) for k, cid in enumerate(ids) if k != 3}
        assert skipped == {ids[3]}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
        engine.dispose()
