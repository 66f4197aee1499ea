"""Review pages and the review API: curators only, blind audit items first, keyset pages,
judgements recorded (unknown items refused whole), undecidable items listed."""

from __future__ import annotations

from sqlalchemy import select

from synset_builder.consensus.dynamic import NO_VOTERS
from synset_builder.db.models import (
    Annotator,
    AuditSample,
    Consensus,
    ExpertDecision,
    Requeue,
    Vote,
)
from synset_builder.db.session import session_scope
from synset_builder.review import audit
from tests.annotator_web.webtools import Web


def decide(web: Web) -> list[int]:
    """Items 0-5 accepted (two yes votes), 6-8 rejected, 9 undecided because nobody is
    left to vote, 10-11 pending; item 11 is a trainer's suspect. Returns the ids."""
    ids = web.seeded.candidate_ids
    with session_scope(web.engine) as s:
        ann, bob = (s.scalar(select(Annotator.id).where(Annotator.username == u))
                    for u in ("ann", "bob"))  # fmt: skip
        for k, cid in enumerate(ids):
            word = ("accepted" if k < 6 else "rejected" if k < 9 else
                    "undecided" if k == 9 else "pending")  # fmt: skip
            if k < 10:
                for who in (ann, bob):
                    said = k < 6 or (k == 9 and who == ann)
                    s.add(Vote(candidate_id=cid, annotator_id=who, answer=said))
            s.add(Consensus(candidate_id=cid, p_yes=0.97 if k < 6 else 0.5 if k >= 9 else 0.03,
                            decision=word, method="dynamic", n_votes=2 if k < 10 else 0,
                            reason=NO_VOTERS if k == 9 else None))  # fmt: skip
        s.add(Requeue(candidate_id=ids[11], reason="trainer suspect, model predicts n0"))
    return ids


def test_annotators_get_403_on_every_review_route(web: Web) -> None:
    decide(web)
    client = web.client("ann")
    wnid = web.seeded.wnid
    assert client.get("/review").status_code == 403
    assert client.get(f"/review/{wnid}?decision=accepted").status_code == 403
    assert client.get("/api/review/next").status_code == 403
    body = {"decisions": [{"candidate_id": web.seeded.candidate_ids[0], "label": False}]}
    assert client.post("/api/review", json=body).status_code == 403
    assert web.client().get("/api/review/next").status_code == 401
    with session_scope(web.engine) as s:
        assert s.scalar(select(ExpertDecision.id)) is None


def test_audit_items_come_first_and_blind_then_judgements_count(web: Web) -> None:
    ids = decide(web)
    with session_scope(web.engine) as s:
        audit.start(s, [web.seeded.wnid], n=3, seed=5)
    client = web.client("cur")
    got = client.get("/api/review/next", params={"n": 5})
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["synset"]["wnid"] == web.seeded.wnid and data["synset"]["gloss"]
    items = data["items"]
    assert len(items) == 4  # three audit items and the one undecided item
    with session_scope(web.engine) as s:
        drawn = sorted(s.scalars(select(AuditSample.candidate_id)))
    # Three audit items first, blind; then the undecided item, with its votes.
    assert [i["candidate_id"] for i in items[:3]] == drawn
    assert all(i["decision"] is None and i["p_yes"] is None and i["votes"] is None
               for i in items[:3])  # fmt: skip
    assert items[3]["candidate_id"] == ids[9] and items[3]["decision"] == "undecided"
    assert items[3]["votes"] == {"yes": 1, "no": 1, "unsure": 0}
    assert client.get(items[0]["image_url"]).status_code == 200
    # The blind page shows no crowd's side either.
    page = client.get(f"/review/{web.seeded.wnid}")
    assert page.status_code == 200 and "Blind audit" in page.text
    assert "P(yes)" not in page.text and "accepted" not in page.text.split("<main>")[1]

    # One unknown item refuses the request: nothing is written.
    bad = [{"candidate_id": drawn[0], "label": True}, {"candidate_id": 2**31 - 1, "label": True}]
    refused = client.post("/api/review", json={"decisions": bad})
    assert refused.status_code == 404 and "2147483647" in refused.json()["detail"]
    form = client.post("/api/review", data={"decisions": "x"})
    assert form.status_code == 415
    judged = [{"candidate_id": c, "label": c != drawn[0]} for c in drawn]
    ok = client.post("/api/review", json={"decisions": judged})
    assert ok.status_code == 200 and ok.json() == {"accepted": 3}
    again = client.post("/api/review", json={"decisions": judged[1:]})
    assert again.json() == {"accepted": 2}  # a confirmation counts as a judgement
    with session_scope(web.engine) as s:
        verdicts = dict(s.execute(select(AuditSample.candidate_id, AuditSample.judged_label)).all())
    assert verdicts == {c: c != drawn[0] for c in drawn}
    after = client.get("/api/review/next", params={"n": 5}).json()["items"]
    assert after[0]["candidate_id"] == ids[9]  # the audit is done; the work queue is next

    home = client.get("/review")
    assert home.status_code == 200
    assert "Pooled over 1 synset" in home.text and "0.667" in home.text
    dashboard = client.get("/dashboard").text
    assert "Audited precision (blind audit, pooled over 1 synset" in dashboard
    assert "<b>66.7%</b>" in dashboard and ">67%</a>" in dashboard


def test_grids_page_by_key_and_list_what_votes_cannot_settle(web: Web) -> None:
    ids = decide(web)
    client = web.client("cur")
    wnid = web.seeded.wnid
    undecided = client.get(f"/review/{wnid}?decision=undecided")
    assert undecided.status_code == 200
    assert f'data-id="{ids[9]}"' in undecided.text and NO_VOTERS in undecided.text
    suspect = client.get(f"/review/{wnid}?decision=suspect").text
    assert f'data-id="{ids[11]}"' in suspect and f'data-id="{ids[10]}"' not in suspect
    accepted = client.get(f"/review/{wnid}?decision=accepted").text
    assert [f'data-id="{c}"' in accepted for c in ids] == [k < 6 for k in range(12)]
    # Keyset pages: after=ID starts past that id, whatever was judged meanwhile.
    later = client.get(f"/review/{wnid}?decision=accepted&after={ids[3]}").text
    assert [f'data-id="{c}"' in later for c in ids[:6]] == [False] * 4 + [True] * 2
    by_api = client.get("/api/review/next", params={"decision": "accepted", "synset": wnid})
    assert [i["candidate_id"] for i in by_api.json()["items"]] == ids[:6]
    # Rejected by a curator: it leaves the accepted grid and shows as the expert's.
    client.post("/api/review", json={"decisions": [{"candidate_id": ids[0], "label": False}]})
    accepted = client.get(f"/review/{wnid}?decision=accepted").text
    assert f'data-id="{ids[0]}"' not in accepted
    rejected = client.get(f"/review/{wnid}?decision=rejected").text
    assert f'data-id="{ids[0]}"' in rejected and "(expert cur)" in rejected
    # Handed back (label null): the crowd's decision is in force again.
    client.post("/api/review", json={"decisions": [{"candidate_id": ids[0], "label": None}]})
    assert f'data-id="{ids[0]}"' in client.get(f"/review/{wnid}?decision=accepted").text
    assert client.get("/review/n00000000").status_code == 404
    assert client.get(f"/review/{wnid}?decision=bogus").status_code == 422


def test_the_review_api_is_documented(web: Web) -> None:
    schema = web.client().get("/openapi.json").json()
    nxt = schema["paths"]["/api/review/next"]["get"]["responses"]["200"]
    assert nxt["content"]["application/json"]["schema"]["$ref"].endswith("/ReviewNext")
    post = schema["paths"]["/api/review"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ReviewOut"
    )
    item = schema["components"]["schemas"]["ReviewItem"]["properties"]
    assert {"candidate_id", "image_url", "decision", "p_yes", "votes"} <= set(item)
