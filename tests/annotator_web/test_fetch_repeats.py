"""A fetch serves each item once: a reload re-serves the open page and tops it up with
other items, never the same item twice (issue 19, item 11), on both backends."""

from __future__ import annotations

import re

from synset_builder.db.models import Gold
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import make_web


def _ids(client, n: int) -> list[int]:  # noqa: ANN001 - a TestClient
    return [i["candidate_id"] for i in client.get(f"/api/tasks/next?n={n}").json()["items"]]


def test_refetch_of_a_small_synset_serves_each_held_item_once(settings, photos) -> None:
    web = make_web(settings, photos, n=4)
    try:
        ann = web.client("ann")
        first = _ids(ann, 8)
        assert sorted(first) == sorted(web.seeded.candidate_ids)
        # Calling again (a reload) gives the same open page, each item once.
        for _ in range(2):
            again = _ids(ann, 8)
            assert len(again) == len(set(again)) == 4
            assert set(again) == set(first)
    finally:
        web.close()


def test_refetch_with_a_larger_page_tops_up_with_other_items(settings, photos) -> None:
    web = make_web(settings, photos, n=12)
    try:
        ann = web.client("ann")
        held = _ids(ann, 3)
        bigger = _ids(ann, 8)
        assert len(bigger) == len(set(bigger)) == 8
        assert set(held) <= set(bigger)
    finally:
        web.close()


def test_held_gold_items_are_not_served_twice(settings, photos) -> None:
    web = make_web(settings, photos, n=6, web_gold_fraction=0.5)
    try:
        with session_scope(web.engine) as s:
            s.add_all([Gold(candidate_id=c, answer=True) for c in web.seeded.candidate_ids[:3]])
        ann = web.client("ann")
        first = _ids(ann, 12)
        assert len(first) == len(set(first)) == 6
        again = _ids(ann, 12)
        assert len(again) == len(set(again)) == 6
    finally:
        web.close()


def test_task_page_reload_shows_no_tile_twice(settings, photos) -> None:
    web = make_web(settings, photos, n=4, web_grid_size=8)
    try:
        ann = web.client("ann")
        for _ in range(3):
            page = ann.get("/task").text
            tiles = [int(x) for x in re.findall(r'name="item" value="(\d+)"', page)]
            assert sorted(tiles) == sorted(web.seeded.candidate_ids)
    finally:
        web.close()
