"""The curator's dashboard, the votes CSV, gold marking, goals and thumbnails."""

from __future__ import annotations

import csv
import io
import re

from PIL import Image as PILImage
from sqlalchemy import select, update

from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Consensus,
    ConsensusRefit,
    Gold,
    Synset,
)
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web, csrf_of


def vote_page(client, label: bool) -> list[int]:  # noqa: ANN001 - a TestClient
    items = [i["candidate_id"] for i in client.get("/api/tasks/next?n=4").json()["items"]]
    votes = [{"candidate_id": c, "label": label} for c in items]
    assert client.post("/api/votes", json={"votes": votes, "elapsed_ms": 8000}).status_code == 200
    return items


def test_dashboard_shows_funnel_annotators_and_exports_votes(web: Web) -> None:
    ann, bob, cur = web.client("ann"), web.client("bob"), web.client("cur")
    ann_items = vote_page(ann, True)
    bob_items = vote_page(bob, False)
    with session_scope(web.engine) as s:
        s.add(Gold(candidate_id=web.seeded.candidate_ids[-1], answer=True))
    html = cur.get("/dashboard").text
    assert "whippet" in html and web.seeded.wnid in html
    assert ">ann<" in html and ">bob<" in html
    assert "2.0" in html  # seconds per vote: 8000 ms over 4 items
    rows = {r["wnid"]: r for r in cur.get("/api/synsets").json()}
    whippet = rows[web.seeded.wnid]
    assert whippet["counts"]["candidates"] == 12 and whippet["counts"]["votes"] == 8
    assert whippet["votes_last_hour"] == 8
    r = cur.get("/dashboard/votes.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = list(csv.DictReader(io.StringIO(r.text)))
    assert {(int(g["item"]), g["worker"], g["label"]) for g in got} == {
        *((c, "ann", "1") for c in ann_items),
        *((c, "bob", "0") for c in bob_items),
    }


def synset_cells(html: str) -> dict[str, str]:
    """The numeric cells of the first synset row, keyed by their column header."""
    table = html[html.index("<h2>Synsets</h2>") : html.index("<h2>Annotators</h2>")]
    heads = re.findall(r'<th class="num"[^>]*>([^<]*)</th>', table)
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert len(cells) >= len(heads), table
    return dict(zip(heads, cells[: len(heads)], strict=True))


def test_dashboard_shows_items_still_being_voted(web: Web) -> None:
    # Distinct numbers, so the column cannot show another decision's count by chance.
    decisions = ["pending"] * 5 + ["accepted"] * 3 + ["undecided"] * 2 + ["rejected"]
    with session_scope(web.engine) as s:
        for cand, decision in zip(web.seeded.candidate_ids, decisions, strict=False):
            s.add(Consensus(candidate_id=cand, p_yes=0.5, decision=decision, method="dynamic"))
    cur = web.client("cur")
    cells = synset_cells(cur.get("/dashboard").text)
    assert list(cells).index("pending") == list(cells).index("undecided") + 1
    assert cells["pending"] == "5" and cells["undecided"] == "2"
    assert cells["accepted"] == "3" and cells["rejected"] == "1"
    (row,) = cur.get("/api/synsets").json()
    assert row["counts"]["pending"] == 5


def test_dashboard_shows_the_hard_share_consensus_learned(web: Web) -> None:
    cur = web.client("cur")
    # Not learned yet (no `synset consensus`): a dash, and null for scripts.
    cells = synset_cells(cur.get("/dashboard").text)
    assert cells["hard"] == "–"
    assert cur.get("/api/synsets").json()[0]["hard_share"] is None
    with session_scope(web.engine) as s:
        s.execute(update(Synset).where(Synset.wnid == web.seeded.wnid).values(hard_share=0.23))
    cells = synset_cells(cur.get("/dashboard").text)
    assert list(cells).index("hard") == list(cells).index("agreement") + 1
    assert cells["hard"] == "23%"
    assert cur.get("/api/synsets").json()[0]["hard_share"] == 0.23
    page = cur.get("/dashboard?sort=hard")
    assert page.status_code == 200
    assert re.search(r'aria-current="true"><b>hard share ▼', page.text)


def test_dashboard_shows_why_an_annotator_was_excluded(web: Web) -> None:
    reason = "gave the same answer 10 times out of 10 while the others gave it 40%"
    with session_scope(web.engine) as s:
        ann = s.scalar(select(Annotator).where(Annotator.username == "ann"))
        s.add(AnnotatorQuality(annotator_id=ann.id, excluded=True, exclusion_reason=reason))
    assert reason in web.client("cur").get("/dashboard").text
    page = web.client("ann").get("/task").text
    assert "No more tasks" in page and reason in page


def test_dashboard_says_when_the_model_was_last_refitted(web: Web) -> None:
    cur = web.client("cur")
    assert "No refit of the model yet" in cur.get("/dashboard").text
    with session_scope(web.engine) as s:
        s.add(ConsensusRefit(votes_seen=40, status="failed", detail="killed by SIGKILL"))
        s.add(ConsensusRefit(votes_seen=977, status="running"))
    line = re.search(r'<p id="model-refit"[^>]*>(.*?)</p>', cur.get("/dashboard").text, re.S)
    assert line, "no refit line on the dashboard"
    assert "running" in line.group(1) and "votes up to id 977" in line.group(1)
    assert "SIGKILL" not in line.group(1)  # the newest refit, not an older one


def test_curator_sets_goals_and_marks_gold(web: Web) -> None:
    cur = web.client("cur")
    token = csrf_of(cur.get("/dashboard").text)
    r = cur.post(
        f"/dashboard/synsets/{web.seeded.wnid}/goal", data={"goal": 50, "csrf_token": token}
    )
    assert r.status_code == 303
    target = web.seeded.candidate_ids[3]
    r = cur.post(
        "/dashboard/gold", data={"candidate_id": target, "answer": "false", "csrf_token": token}
    )
    assert r.status_code == 303
    assert (
        cur.post(
            "/dashboard/gold", data={"candidate_id": 99999, "answer": "true", "csrf_token": token}
        ).status_code
        == 404
    )
    with session_scope(web.engine) as s:
        assert s.scalar(select(Synset.goal).where(Synset.wnid == web.seeded.wnid)) == 50
        assert s.scalar(select(Gold.answer).where(Gold.candidate_id == target)) is False
    assert web.client("ann").get(f"/api/synsets/{web.seeded.wnid}").json()["goal"] == 50


def test_thumbnails_are_small_cached_and_revalidated(web: Web) -> None:
    ann = web.client("ann")
    # An annotator opens the images they were served (test_image_access.py).
    image_url = ann.get("/api/tasks/next?n=1").json()["items"][0]["image_url"]
    image_id = int(image_url.split("/")[2])
    r = ann.get(f"/img/{image_id}/thumb")
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]
    with PILImage.open(io.BytesIO(r.content)) as im:
        assert max(im.size) <= 320
    assert list((web.cfg.data_dir / "thumbs" / "thumb").rglob("*.jpg"))
    again = ann.get(f"/img/{image_id}/thumb", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    large = ann.get(f"/img/{image_id}/large")
    assert large.status_code == 200 and len(large.content) > len(r.content)
    assert ann.get(f"/img/{image_id}/original").status_code == 422
    assert ann.get("/img/999999/thumb").status_code == 404


def test_openapi_documents_the_api(web: Web) -> None:
    spec = web.client().get("/openapi.json").json()
    for path in ("/api/session", "/api/tasks/next", "/api/votes", "/api/synsets", "/api/me"):
        assert path in spec["paths"]
    assert "/task" not in spec["paths"]


def test_every_column_says_what_it_counts(web: Web) -> None:
    """A user trial could not tell what "agreement" or "rejected" counted: every header
    of both tables carries its meaning, and a ratio shows what it is measured on."""
    cur = web.client("cur")
    items = vote_page(web.client("ann"), True)
    with session_scope(web.engine) as s:
        s.execute(update(Consensus).where(Consensus.candidate_id.in_(items))
                  .values(decision="accepted"))  # fmt: skip
    html = cur.get("/dashboard").text
    heads = re.findall(r"<th([^>]*)>([^<]+)</th>", html)
    assert len(heads) >= 20
    untitled = [name for attrs, name in heads if "title=" not in attrs and name != "name"]
    assert untitled == ["synset", "role"], untitled
    assert "rejected_by_vote" in html  # the CLI's name for the dashboard's "rejected"
    assert re.search(r"\d+% <span class=\"muted\">\(\d+\)</span>", html)  # agreement (n)
    assert re.search(r"\d+ / \d+ \(\d+%\)", html)  # progress toward the goal, in numbers
