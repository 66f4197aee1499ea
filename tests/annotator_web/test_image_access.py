"""Who may open ``/img/...`` (issue 19, item 6), on both backends.

An annotator sees the images they were served (leased, held before, or answered)
and the accepted examples their task page shows; a curator sees any image; nobody
sees a taken-down one. Every refusal looks like a missing image.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from synset_builder.db.models import Candidate, Consensus, Image, Lease, utcnow
from synset_builder.db.session import session_scope
from synset_builder.takedown import add_takedown
from tests.annotator_web.webtools import Web

MISSING = 999999


def _image_of(web: Web, candidate_id: int) -> int:
    with session_scope(web.engine) as s:
        return s.scalar(select(Candidate.image_id).where(Candidate.id == candidate_id))


def _leased(client, n: int) -> dict[int, int]:  # noqa: ANN001 - a TestClient
    """Fetch a page; {candidate: image} of its items."""
    items = client.get(f"/api/tasks/next?n={n}").json()["items"]
    return {i["candidate_id"]: int(i["image_url"].split("/")[2]) for i in items}


def _refusal(client, image_id: int, query: str = "") -> tuple[int, object]:  # noqa: ANN001
    r = client.get(f"/img/{image_id}/thumb{query}")
    return r.status_code, r.json() if r.status_code != 200 else None


def test_annotator_sees_only_images_they_were_served(web: Web) -> None:
    ann, bob = web.client("ann"), web.client("bob")
    missing = _refusal(ann, MISSING)
    assert missing[0] == 404
    # Before any lease, every id answers exactly like one that does not exist.
    for image_id in web.seeded.image_ids:
        assert _refusal(ann, image_id) == missing
    mine = _leased(ann, 3)
    for image_id in mine.values():
        assert ann.get(f"/img/{image_id}/thumb").status_code == 200
        assert ann.get(f"/img/{image_id}/large").status_code == 200
        # Another annotator cannot open what ann holds.
        assert _refusal(bob, image_id) == missing
    others = set(web.seeded.image_ids) - set(mine.values())
    assert all(_refusal(ann, image_id) == missing for image_id in others)
    # A curator sees any image.
    cur = web.client("cur")
    assert all(cur.get(f"/img/{i}/thumb").status_code == 200 for i in web.seeded.image_ids)


def test_images_stay_visible_after_the_answer_and_after_the_lease_expired(web: Web) -> None:
    ann = web.client("ann")
    mine = _leased(ann, 2)
    voted, kept = list(mine)
    r = ann.post("/api/votes", json={"votes": [{"candidate_id": voted, "label": True}]})
    assert r.json()["accepted"] == 1
    with session_scope(web.engine) as s:
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(hours=1)))
    for candidate_id in (voted, kept):
        assert ann.get(f"/img/{mine[candidate_id]}/thumb").status_code == 200


def test_taken_down_image_is_404_for_everyone(web: Web) -> None:
    ann, cur = web.client("ann"), web.client("cur")
    mine = _leased(ann, 2)
    gone = next(iter(mine.values()))
    assert ann.get(f"/img/{gone}/thumb").status_code == 200
    with session_scope(web.engine) as s:
        sha = s.scalar(select(Image.sha256).where(Image.id == gone))
        add_takedown(s, kind="sha256", value=sha, reason="the creator asked")
    missing = _refusal(ann, MISSING)
    for client in (ann, cur):
        for size in ("thumb", "large"):
            r = client.get(f"/img/{gone}/{size}")
            assert (r.status_code, r.json()) == missing
    # The other leased image is still there.
    assert all(ann.get(f"/img/{i}/thumb").status_code == 200 for i in mine.values() if i != gone)


def test_reported_image_is_only_shown_to_curators(web: Web) -> None:
    ann, cur = web.client("ann"), web.client("cur")
    mine = _leased(ann, 2)
    candidate_id, image_id = next(iter(mine.items()))
    r = ann.post("/api/reports", json={"candidate_id": candidate_id, "reason": "offensive"})
    assert r.status_code == 200
    assert _refusal(ann, image_id) == _refusal(ann, MISSING)
    assert cur.get(f"/img/{image_id}/thumb").status_code == 200
    assert cur.get("/dashboard").status_code == 200


def test_accepted_examples_open_by_their_signed_url_only(web: Web) -> None:
    examples = web.seeded.candidate_ids[-2:]
    with session_scope(web.engine) as s:
        for cid in examples:
            s.add(Consensus(candidate_id=cid, p_yes=0.99, decision="accepted", method="t"))
    ann, bob = web.client("ann"), web.client("bob")
    page = ann.get("/task").text
    urls = re.findall(r'src="(/img/\d+/thumb\?example=[0-9a-f]+)" alt="accepted example"', page)
    assert sorted(int(u.split("/")[2]) for u in urls) == sorted(_image_of(web, c) for c in examples)
    missing = _refusal(ann, MISSING)
    for url in urls:
        image_id = int(url.split("/")[2])
        # Any annotator the page was shown to may open it; the bare id does not open.
        assert ann.get(url).status_code == 200 and bob.get(url).status_code == 200
        assert _refusal(bob, image_id) == missing
        assert _refusal(bob, image_id, "?example=" + "0" * 32) == missing
    # One example's signature does not open another image.
    signature = urls[0].split("=")[1]
    served_elsewhere = [i for i in web.seeded.image_ids if f"/img/{i}/" not in " ".join(urls)]
    assert _refusal(bob, served_elsewhere[0], f"?example={signature}") == missing
