"""The pool: which candidates are left for voting and export after cleaning.

This is the single definition of "in the pool", shared by the web app (what to
serve), consensus, export and ``synset status``; later stages add their own
conditions (not reported, not taken down) to it rather than re-deriving it. Nothing
is deleted by the clean stage, so leaving the pool is always a flag with a reason:

* the image was rejected by the quality filter (``Image.quality == "rejected"``),
  unless a curator kept it (``Image.keep``, ``synset clean --keep SHA256``);
* the candidate is a near duplicate of another candidate of the same synset
  (``Candidate.near_duplicate_of``);
* the image is a copy of a picture in a reference set (``Image.reference_match``,
  ``synset clean --against``), so a new test split never holds a training image.

Images the clean stage has not looked at yet (``Image.quality IS NULL``) are in the
pool: cleaning narrows it, it is not a gate. Cross-synset conflicts
(``Candidate.conflict_group``) stay in the pool: voting decides them.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_

from synset_builder.db.models import Candidate, Image, Report
from synset_builder.takedown import not_taken_down_clause, taken_down_clause


def quality_ok_clause() -> ColumnElement[bool]:
    """The image passed the quality filter, was not checked yet, or was kept."""
    return or_(Image.quality.is_distinct_from("rejected"), Image.keep.is_(True))


def clean_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate`` joined to its ``Image``: the voting pool.

    Use as ``select(Candidate).join(Image, Image.id == Candidate.image_id)
    .where(clean_clause())``.
    """
    return and_(
        quality_ok_clause(),
        Candidate.near_duplicate_of.is_(None),
        Image.reference_match.is_(None),
        # `synset takedown`: withdrawn by sha256, URL or creator (reversible).
        not_taken_down_clause(),
        not_reported_clause(),
    )


def not_reported_clause() -> ColumnElement[bool]:
    """No open report on the image (web "report this image"), and none a curator upheld."""
    return ~exists().where(
        Report.image_id == Image.id,
        or_(Report.resolution.is_(None), Report.resolution == "removed"),
    )


def withheld_clause() -> ColumnElement[bool]:
    """Out of the pool for a takedown or a report: what ``image.withheld`` records
    for the counters (migration 0017 spells the same rule in its triggers)."""
    return or_(taken_down_clause(), ~not_reported_clause())


def passed_clean_clause() -> ColumnElement[bool]:
    """Only the clean stage's own conditions: quality (or kept), not a copy, no leak.

    ``synset status`` counts the candidates failing this as ``rejected``, so a
    takedown or a report does not show up as a cleaning decision.
    """
    return and_(
        quality_ok_clause(),
        Candidate.near_duplicate_of.is_(None),
        Image.reference_match.is_(None),
    )


def cleaned_clause() -> ColumnElement[bool]:
    """The clean stage has looked at this candidate's image (quality checked)."""
    return Image.quality.is_not(None)
