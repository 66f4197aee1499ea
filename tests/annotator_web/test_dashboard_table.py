"""The dashboard at scale: the synset table pages, sorts and filters; curator reads plan
for their values; the web app's own writes keep the counters exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text

from annotator_web import stats
from annotator_web.app import create_app
from synset_builder.db.models import Annotator, Candidate, Consensus, Image, Report, Synset, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.test_dashboard import vote_page
from tests.annotator_web.webtools import Web, csrf_of
from tests.tally_check import exact_equals_kept

N = 60  # synsets besides the whippet: 61 targets, two pages of 50


def pending_of(k: int) -> int:
    """Distinct per synset (7 and 60 are coprime), so every order is unambiguous."""
    return (k * 7) % N


def fill(web: Web) -> dict[str, int]:
    """N synsets "class k": pending items, goals, and for a few recent or old votes."""
    now = datetime.now(UTC)
    with session_scope(web.engine) as s:
        sids = s.scalars(
            insert(Synset).returning(Synset.id),
            [{"wnid": f"n0900{k:04d}", "name": f"class {k}", "lemmas": [f"class{k}"],
              "gloss": f"gloss {k}", "target": True, "goal": 10 + k} for k in range(N)],
        ).all()  # fmt: skip
        total = sum(pending_of(k) + 2 for k in range(N))
        images = s.scalars(
            insert(Image).returning(Image.id),
            [{"sha256": f"{i:064x}", "path": "p", "width": 1, "height": 1, "format": "JPEG",
              "bytes": 1} for i in range(total)],
        ).all()  # fmt: skip
        owners = [sid for k, sid in enumerate(sids) for _ in range(pending_of(k) + 2)]
        cands = s.scalars(
            insert(Candidate).returning(Candidate.id),
            [{"image_id": i, "synset_id": sid, "source": "t"}
             for i, sid in zip(images, owners, strict=True)],
        ).all()  # fmt: skip
        by_synset: dict[int, list[int]] = {}
        for cid, sid in zip(cands, owners, strict=True):
            by_synset.setdefault(sid, []).append(cid)
        rows = []
        for k, sid in enumerate(sids):
            mine = by_synset[sid]
            rows += [{"candidate_id": c, "p_yes": 0.5, "decision": "pending", "method": "t"}
                     for c in mine[: pending_of(k)]]  # fmt: skip
            # Accepted items for progress: k % 4 of them against a goal of 10 + k.
            rows += [{"candidate_id": c, "p_yes": 0.9, "decision": "accepted", "method": "t"}
                     for c in mine[pending_of(k) : pending_of(k) + k % 3]]  # fmt: skip
        s.execute(insert(Consensus), rows)
        people = s.scalars(
            insert(Annotator).returning(Annotator.id),
            [{"username": f"v{j}", "role": "annotator"} for j in range(3)],
        ).all()
        # Votes on the last item of synsets 0-4: k + 1 voters now... (k < 3), or two hours ago.
        votes = []
        for k in range(5):
            item = by_synset[sids[k]][-1]
            when = now if k < 3 else now - timedelta(hours=2)
            for j in range(min(k + 1, 3)):
                votes.append({"candidate_id": item, "annotator_id": people[j],
                              "answer": j != 1, "created_at": when})  # fmt: skip
        s.execute(insert(Vote), votes)
    return {f"n0900{k:04d}": k for k in range(N)}


def wnids_in(html: str) -> list[str]:
    table = html[html.index("<h2>Synsets</h2>") : html.index("<h2>Annotators</h2>")]
    return re.findall(r'<span class="wnid">(n\d+)</span>', table)


def test_the_synset_table_pages_sorts_and_filters(web: Web) -> None:
    classes = fill(web)
    cur = web.client("cur")
    first = cur.get("/dashboard").text
    assert "page 1 of 2" in first and "61 synsets" in first
    names = wnids_in(first)
    assert len(names) == 50
    second = cur.get("/dashboard?page=2").text
    assert len(wnids_in(second)) == 11 and not set(wnids_in(second)) & set(names)
    assert 'rel="prev"' in second and 'rel="next"' not in second

    # Most pending first; the whippet has none and no agreement.
    by_pending = wnids_in(cur.get("/dashboard?sort=pending").text)
    expected = sorted(classes, key=lambda w: -pending_of(classes[w]))[:50]
    assert by_pending == expected
    ascending = wnids_in(cur.get("/dashboard?sort=pending&order=asc&page=2").text)
    assert ascending == sorted(classes, key=lambda w: pending_of(classes[w]))[49:]

    # Busiest in the last hour first: class 2 (3 votes), 1 (2), 0 (1); old votes do not count.
    busiest = wnids_in(cur.get("/dashboard?sort=votes_per_hour").text)
    assert busiest[:3] == ["n09000002", "n09000001", "n09000000"]
    # Least agreement first: class 1 (1 of 2 voters with the majority), then classes 2, 3
    # and 4 (2 of 3, by name); synsets with no item of two votes last, in name order.
    hardest = wnids_in(cur.get("/dashboard?sort=agreement").text)
    assert hardest[:5] == ["n09000001", "n09000002", "n09000003", "n09000004", web.seeded.wnid]
    # Furthest from the goal first: the whippet and every class with no accepted item.
    lagging = wnids_in(cur.get("/dashboard?sort=progress").text)
    zero = {w for w, k in classes.items() if k % 3 == 0} | {web.seeded.wnid}
    assert set(lagging[:21]) == zero

    found = cur.get("/dashboard?q=CLASS 1").text
    assert sorted(wnids_in(found)) == sorted(
        w for w, k in classes.items() if str(k).startswith("1")
    )
    assert "11 synsets matching" in found
    nothing = cur.get("/dashboard?q=zebra").text
    assert wnids_in(nothing) == [] and "No synset matches" in nothing
    assert cur.get("/dashboard?sort=size").status_code == 422
    assert cur.get("/dashboard?page=0").status_code == 422
    assert wnids_in(cur.get("/dashboard?page=99").text) == wnids_in(second)


def test_curator_reads_plan_for_their_values(web: Web, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("plan_cache_mode is PostgreSQL's")
    app = create_app(web.cfg)
    web.apps.append(app)
    with app.state.sessionmaker() as s:
        mode = text("SHOW plan_cache_mode")
        assert s.scalar(mode) == "force_generic_plan"  # the request path's prebuilt statements
        stats.synset_rows(s)
        assert s.scalar(mode) == "auto"
        s.commit()
        assert s.scalar(mode) == "force_generic_plan"


def test_the_web_apps_writes_keep_the_counters_exact(web: Web) -> None:
    ann, bob, cur = web.client("ann"), web.client("bob"), web.client("cur")
    item = vote_page(ann, True)[0]
    vote_page(bob, False)
    vote_page(ann, False)
    with session_scope(web.engine) as s:
        exact_equals_kept(s)
    assert (
        ann.post("/api/reports", json={"candidate_id": item, "reason": "private"}).status_code
        == 200
    )
    with session_scope(web.engine) as s:
        exact_equals_kept(s)
        report = s.scalar(select(Report.id))
    token = csrf_of(cur.get("/dashboard").text)
    r = cur.post(f"/dashboard/reports/{report}", data={"resolution": "kept", "csrf_token": token})
    assert r.status_code == 303
    r = cur.post(
        "/dashboard/gold", data={"candidate_id": item, "answer": "true", "csrf_token": token}
    )
    assert r.status_code == 303
    with session_scope(web.engine) as s:
        exact_equals_kept(s)
    rows = {r["wnid"]: r for r in cur.get("/api/synsets").json()}
    assert rows[web.seeded.wnid]["counts"]["votes"] == 12


def crowd(web: Web, n: int = N) -> dict[str, int]:
    """``n`` crowd annotators with one timed vote each: "crowd k" took a distinct time."""
    with session_scope(web.engine) as s:
        items = s.scalars(select(Candidate.id).order_by(Candidate.id)).all()
        people = s.scalars(
            insert(Annotator).returning(Annotator.id),
            [{"username": f"crowd {k:02d}", "role": "annotator", "worker_id": f"W{k:03d}"}
             for k in range(n)],
        ).all()  # fmt: skip
        s.execute(
            insert(Vote),
            [{"candidate_id": items[k % len(items)], "annotator_id": a, "answer": True,
              "time_ms": 1000 + pending_of(k) * 10} for k, a in enumerate(people)],
        )  # fmt: skip
    return {f"crowd {k:02d}": k for k in range(n)}


def names_in(html: str) -> list[str]:
    table = html[html.index("<h2>Annotators</h2>") : html.index("<h2>Reported images</h2>")]
    return re.findall(r"<td><b>([^<]+)</b></td>", table)


def test_the_annotator_table_pages_sorts_and_filters(web: Web) -> None:
    people = crowd(web)
    cur = web.client("cur")
    first = cur.get("/dashboard").text
    everyone = names_in(first) + names_in(cur.get("/dashboard?a_page=2").text)
    assert len(names_in(first)) == 50 and len(everyone) == len(set(everyone)) > N
    assert set(people) <= set(everyone) and everyone == sorted(everyone, key=str.casefold)
    assert f"{len(everyone)} annotators" in first

    # Fastest first; those without a timed vote (the seeded staff) last.
    fastest = names_in(cur.get("/dashboard?a_sort=speed").text)
    assert fastest == sorted(people, key=lambda p: pending_of(people[p]))[:50]
    slowest = names_in(cur.get("/dashboard?a_sort=speed&a_order=desc").text)
    assert slowest == sorted(people, key=lambda p: -pending_of(people[p]))[:50]

    # A crowd id filters too; paging one table keeps the other table's place.
    found = cur.get("/dashboard?a_q=w01").text
    assert names_in(found) == [f"crowd {k}" for k in range(10, 20)]
    assert "10 annotators matching" in found
    assert names_in(cur.get("/dashboard?a_q=nobody").text) == []
    both = cur.get("/dashboard?sort=pending&page=1&a_sort=votes").text
    pager = both[both.index('aria-label="annotator pages"') :]
    nxt = re.search(r'href="([^"]+)" rel="next"', pager)
    assert nxt is not None and "sort=pending" in nxt.group(1) and "a_page=2" in nxt.group(1)
    assert cur.get("/dashboard?a_sort=size").status_code == 422
    assert cur.get("/dashboard?a_page=0").status_code == 422
