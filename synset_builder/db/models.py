"""The data model of design.md as typed SQLAlchemy 2.0 tables.

Schema changes go through Alembic migrations only (``alembic/versions``); a test
checks that these models and the migrations agree. Nothing here is ever deleted
by a stage: rows carry statuses and reasons instead.

It is the one module past 400 lines on purpose: it holds declarations only, no
logic, and keeping every table, index and constraint in one place lets a reader
see the whole schema at once, as the migrations' test compares it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Synset(Base):
    """A category: a WordNet noun synset (wnid ``n########``) or a curator's own."""

    __tablename__ = "synset"
    # Server defaults (hard_share) are read when asked for, not named in each INSERT's
    # RETURNING: the upgrade tests write an older revision's rows with this class.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    wnid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lemmas: Mapped[list[str]] = mapped_column(default=list)
    gloss: Mapped[str] = mapped_column(Text, default="")
    origin: Mapped[str] = mapped_column(String(16), default="wordnet")
    # Targets are collected for; other rows are ancestors kept to show the tree.
    target: Mapped[bool] = mapped_column(Boolean, default=False)
    # Accepted images wanted for this synset (ImageNet aimed at 500-1000).
    goal: Mapped[int] = mapped_column(Integer, default=1000)
    # Outside physical_entity: abstract concepts are hard to photograph.
    imageable: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The candidates of the consensus initial subset, set once by its first submit
    # (live.ensure_initial_subset) and never changed; None until then. The same rows
    # carry consensus.initial; this copy lets the web app find them per synset.
    initial_ids: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # P(a candidate shows the synset), from the last consensus refit; None: not yet (0.5).
    prior_yes: Mapped[float | None] = mapped_column(Float, default=None)
    # The share of its candidates the crowd cannot tell (consensus/hard_items.py), from
    # the last refit; 0 until one (every item ordinary).
    hard_share: Mapped[float] = mapped_column(Float, nullable=False, server_default="0")


class SynsetEdge(Base):
    """parent -> child hypernym link; WordNet is a DAG, so a child may have several."""

    __tablename__ = "synset_edge"

    parent_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), primary_key=True, index=True)


class Query(Base):
    """A search string of a synset, kept so a curator can see why an image was found."""

    __tablename__ = "query"
    __table_args__ = (UniqueConstraint("synset_id", "text"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    synset_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), index=True)
    text: Mapped[str] = mapped_column(String(300))
    # lemma | lemma+parent | custom
    kind: Mapped[str] = mapped_column(String(16), default="lemma")
    # Removed queries stay as rows (active=False): nothing is deleted.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Image(Base):
    """One row per distinct file content, stored content-addressed under the data dir."""

    __tablename__ = "image"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(500))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    # 64-bit perceptual hash stored as a signed int64 (fits BIGINT everywhere).
    phash: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # ok | rejected | None (not checked yet)
    quality: Mapped[str | None] = mapped_column(String(16), default=None)
    quality_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    dup_group: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Clean stage: a curator's override of a quality rejection (`synset clean --keep`).
    keep: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Flagged, not rejected: some categories are legitimately photographed in grey.
    greyscale: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # Variance of the Laplacian of a downscaled grey copy; picks the best of a dup group.
    sharpness: Mapped[float | None] = mapped_column(Float, default=None)
    # The reference-set file (`synset clean --against`) this picture is a copy of.
    reference_match: Mapped[str | None] = mapped_column(Text, default=None)
    # Matched by an active takedown or an open or upheld report. Written only by the
    # triggers of migration 0017, for the per-synset counters (synset_builder/tally.py);
    # the pool reads the takedown and report tables themselves (synset_builder/pool.py).
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ImageHash(Base):
    """Perceptual hashes of one image: the full picture, central crops and the mirror.

    One hash of the full picture cannot match crops or flips at a safe distance, so
    the clean stage matches when any of these is near another image's full hash.
    Signed int64 like ``Image.phash``.
    """

    __tablename__ = "image_hash"

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id"), primary_key=True)
    # phash | dhash
    algo: Mapped[str] = mapped_column(String(16), primary_key=True)
    full: Mapped[int] = mapped_column(BigInteger)
    crop90: Mapped[int] = mapped_column(BigInteger)
    crop80: Mapped[int] = mapped_column(BigInteger)
    mirror: Mapped[int] = mapped_column(BigInteger)
    # The hashes' definition (clean.fingerprint.HASH_VERSION): another one is rehashed.
    version: Mapped[int] = mapped_column(Integer, server_default="1")


# The serve key: a stable pseudo-random order of a synset's candidates (Knuth's
# multiplicative hash of the id), defined once here. Its SQL is inlined, not bound,
# so queries match the expression indexes below; migrations 0010 and 0014 spell the
# same text, as migrations are history and never import what may change.
SERVE_KEY_MULTIPLIER = 2654435761
SERVE_KEY_RANGE = 2147483629
SERVE_KEY_SQL = f"id * {SERVE_KEY_MULTIPLIER} % {SERVE_KEY_RANGE}"


class Candidate(Base):
    """An (image, synset) pair with the provenance of how it was found."""

    __tablename__ = "candidate"
    __table_args__ = (
        UniqueConstraint("image_id", "synset_id"),
        # The web app walks a synset's candidates in serve-key order (live.serve_key).
        Index("ix_candidate_serve_key", "synset_id", text(SERVE_KEY_SQL)),
        # The same, only the candidates not settled: the bulk of what the web app serves.
        Index(
            "ix_candidate_serve_open",
            "synset_id",
            text(SERVE_KEY_SQL),
            postgresql_where=text("NOT settled"),
            sqlite_where=text("settled = 0"),
        ),
        # Takedowns by URL or creator find their images through these (a hash index:
        # a URL may outgrow what a PostgreSQL btree accepts).
        Index("ix_candidate_url", "url", postgresql_using="hash"),
        Index("ix_candidate_creator", "creator"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id"), index=True)
    synset_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text, default=None)
    query: Mapped[str | None] = mapped_column(String(300), default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    license: Mapped[str | None] = mapped_column(String(100), default=None)
    creator: Mapped[str | None] = mapped_column(String(300), default=None)
    landing_url: Mapped[str | None] = mapped_column(Text, default=None)
    title: Mapped[str | None] = mapped_column(Text, default=None)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Clean stage: the candidate of the same synset kept in place of this near copy.
    near_duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("candidate.id"), default=None, index=True
    )
    # Set when this picture (or a near copy) is also a candidate of an unrelated
    # synset: the image's dup_group, so voting and export can look at them together.
    conflict_group: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    # Its consensus row is initial or decided. Written only by triggers on consensus
    # (migration 0014), so every writer keeps it; it may lag behind as false (see there).
    settled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class FetchFailure(Base):
    """A URL the crawler could not turn into an image, kept as data with its reason.

    One row per (synset, URL), found again by ``synset crawl --retry-failed``; a
    later success marks it resolved instead of deleting it. The URL is keyed by
    its sha256 because real URLs outgrow what a PostgreSQL btree index accepts.
    """

    __tablename__ = "fetch_failure"
    __table_args__ = (UniqueConstraint("synset_id", "url_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    synset_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    query: Mapped[str | None] = mapped_column(String(300), default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    license: Mapped[str | None] = mapped_column(String(100), default=None)
    creator: Mapped[str | None] = mapped_column(String(300), default=None)
    landing_url: Mapped[str | None] = mapped_column(Text, default=None)
    title: Mapped[str | None] = mapped_column(Text, default=None)
    # timeout | http_404 | not_an_image | too_large | decompression_bomb | robots | ...
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class CrawlPage(Base):
    """A result page of a source whose every hit has been downloaded or recorded.

    Lets a re-run (or ``--refill``) skip pages it has finished instead of asking
    the service again, and remember that a (source, query) ran dry.
    """

    __tablename__ = "crawl_page"
    __table_args__ = (UniqueConstraint("synset_id", "source", "query", "page"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    synset_id: Mapped[int] = mapped_column(ForeignKey("synset.id"), index=True)
    # The source spec (``openverse``, ``urls:FILE``, ...).
    source: Mapped[str] = mapped_column(String(500))
    # The query text, "" for sources that take none.
    query: Mapped[str] = mapped_column(String(300), default="")
    page: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    # The source said there is nothing after this page.
    last: Mapped[bool] = mapped_column(Boolean, default=False)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Annotator(Base):
    """A person who votes (or curates); passwords are stored only as hashes."""

    __tablename__ = "annotator"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    # annotator | curator | admin
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A curator can switch an account off; its votes stay, it can no longer log in.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Crowd workers (Prolific, Mechanical Turk) arrive by id instead of a password.
    worker_id: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    completion_code: Mapped[str | None] = mapped_column(String(32), default=None)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    # Carried in the session cookie; adding one ends every session (logout, disable,
    # a password or role change), since a signed cookie cannot be recalled.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # SHA-256 of the secret a crowd worker's first browser got (/join): the worker id
    # alone does not log in. None: the next arrival with the id claims the account.
    join_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Vote(Base):
    """One answer of one annotator on one candidate; never two per pair."""

    __tablename__ = "vote"
    # Its index also serves every lookup by candidate (the first column).
    # Votes of the last hour (the dashboard) through a BRIN index on PostgreSQL: votes are
    # appended in time order, and a BRIN index costs next to nothing to keep up.
    __table_args__ = (
        UniqueConstraint("candidate_id", "annotator_id"),
        Index("ix_vote_created_at", "created_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"), index=True)
    answer: Mapped[bool] = mapped_column(Boolean)
    time_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Gold(Base):
    """A candidate with a known answer, mixed into tasks to measure annotators."""

    __tablename__ = "gold"

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    answer: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Consensus(Base):
    """The current decision on a candidate, recomputable from the votes at any time."""

    __tablename__ = "consensus"
    # The web app serves a synset's initial subset first; this finds it without a scan.
    __table_args__ = (
        Index(
            "ix_consensus_initial",
            "candidate_id",
            postgresql_where=text("initial"),
            sqlite_where=text("initial"),
        ),
    )

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    p_yes: Mapped[float] = mapped_column(Float)
    # A synset_builder.decision.Decision word: accepted | rejected | undecided | pending
    decision: Mapped[str] = mapped_column(String(16), index=True)
    # Why an item is undecided (vote cap, nobody left to vote, hopeless); else None.
    reason: Mapped[str | None] = mapped_column(String(120), default=None)
    method: Mapped[str] = mapped_column(String(32))
    n_votes: Mapped[int] = mapped_column(Integer, default=0)
    # In its synset's initial subset (dynamic consensus): served first, to 10 votes.
    initial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AnnotatorQuality(Base):
    """An annotator's measured skill: gold accuracy and the consensus model's estimate.

    Curators read it on the dashboard; an annotator below the skill floor is
    excluded from consensus and from serving, with the reason kept here.
    """

    __tablename__ = "annotator_quality"

    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"), primary_key=True)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    gold_total: Mapped[int] = mapped_column(Integer, default=0)
    gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    # P(yes | item is a yes) and P(no | item is a no), smoothed toward the pool.
    sensitivity: Mapped[float] = mapped_column(Float, default=0.8)
    specificity: Mapped[float] = mapped_column(Float, default=0.8)
    # What the consensus model reads (consensus/model.py): (truth, vote) counts credited
    # by closed items, yes-yes, yes-no, no-yes, no-no; and the raw answers over the
    # first votes (ANSWER_WINDOW). Numbers, not JSON, so a submit adds to them in one
    # UPDATE without reading them first.
    yy: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    yn: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    ny: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    nn: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    answered_yes: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    answered_no: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    exclusion_reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Export(Base):
    """One export run: its parameters and the checksum of the manifest it wrote."""

    __tablename__ = "export"

    id: Mapped[int] = mapped_column(primary_key=True)
    out_path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Requeue(Base):
    """A candidate sent back to the annotators (e.g. a trainer's suspect), with why.

    Open while ``resolved_at`` is empty: consensus treats the candidate as needing
    more votes. Rows are never deleted, so every reopening can be explained.
    """

    __tablename__ = "requeue"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Lease(Base):
    """The annotator an item is lent to until ``expires_at``; one row per candidate.

    The primary key makes "one holder at a time" a constraint rather than a
    convention; a vote is only taken from the holder, and an expired row may be
    taken over by the next annotator who asks for work.
    """

    __tablename__ = "lease"
    # An annotator's latest lease and unexpired leases are read on every task fetch.
    __table_args__ = (Index("ix_lease_annotator_id_expires_at", "annotator_id", "expires_at"),)

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Report(Base):
    """An annotator's "report this image" (offensive, private, wrong licence).

    While unresolved, or once a curator removed it, the image leaves every queue.
    """

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # kept | removed, set by a curator
    resolution: Mapped[str | None] = mapped_column(String(16), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Unsure(Base):
    """An item an annotator skipped as "unsure": no vote, but never shown to them again."""

    __tablename__ = "unsure"

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginFailure(Base):
    """A failed login, kept so attempts can be limited per account and per address.

    ``kind`` lets the same rows limit other attempts per address: wrong study keys
    and new crowd accounts on ``/join`` (annotator_web/throttle.py).
    """

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    # login | study | join
    kind: Mapped[str] = mapped_column(
        String(16), default="login", server_default="login", index=True
    )
    username: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Takedown(Base):
    """A withdrawal request: every image matching it leaves every queue and export.

    Matched by the image's sha256, or by the URL or creator of any of its
    candidates. Never deleted: ``revoked_at`` reverses it and keeps the record.
    """

    __tablename__ = "takedown"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 | url | creator
    kind: Mapped[str] = mapped_column(String(16), index=True)
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(Text, default=None)


Index("ix_takedown_value", Takedown.value, postgresql_using="hash")


class SynsetTally(Base):
    """The funnel counts of one synset as of the last fold of the ledger.

    Exact counts are this row plus the synset's ``synset_tally_delta`` rows
    (synset_builder/tally.py); triggers (migration 0017) append to the ledger on
    every write, so a page reads as many rows as there are synsets, never one per
    candidate or vote. A cache, not a record: ``synset status --recount`` rebuilds it.
    """

    __tablename__ = "synset_tally"

    synset_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    candidates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    clean: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected_by_vote: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    undecided: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Items with two votes or more, and the sum over them of the majority's share.
    agreed_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agreement_sum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class SynsetTallyDelta(Base):
    """One change to a synset's counts, appended by a trigger: writers never wait on
    a shared counter row. Folded into ``synset_tally`` by readers (tally.fold)."""

    __tablename__ = "synset_tally_delta"

    id: Mapped[int] = mapped_column(primary_key=True)
    synset_id: Mapped[int] = mapped_column(Integer)
    candidates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    clean: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected_by_vote: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    undecided: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agreed_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agreement_sum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class AnnotatorTally(Base):
    """An annotator's dashboard figures as of the last fold (see :class:`SynsetTally`):
    votes, their timed share and total time, gold answered and right, votes on
    decided items and how many of those sided with the decision; and, for the full
    (truth, vote) gold matrix the live model reads (migration 0021), gold answered
    whose truth is yes and yes answers on gold."""

    __tablename__ = "annotator_tally"

    annotator_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timed_votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    gold_answered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_correct: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    decided: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agreed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_truth_yes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_said_yes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AnnotatorTallyDelta(Base):
    """One change to an annotator's figures, appended by a trigger (migration 0017)."""

    __tablename__ = "annotator_tally_delta"
    # A submit reads its voters' rows only (consensus/live_sql.py).
    __table_args__ = (Index("ix_annotator_tally_delta_annotator", "annotator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timed_votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    time_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    gold_answered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_correct: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    decided: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    agreed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_truth_yes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gold_said_yes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ExpertDecision(Base):
    """A curator's judgement of one candidate (migration 0018). Only appended: the
    newest row per candidate is in force; ``label`` None hands it back to the crowd."""

    __tablename__ = "expert_decision"
    __table_args__ = (Index("ix_expert_decision_candidate", "candidate_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    label: Mapped[bool | None] = mapped_column(Boolean, default=None)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # This judgement set the item's gold answer (none came from a gold file).
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuditSample(Base):
    """One item of a synset's blind precision audit and, once judged, its verdict."""

    __tablename__ = "audit_sample"
    __table_args__ = (
        UniqueConstraint("synset_id", "candidate_id", "round"),
        Index("ix_audit_sample_candidate", "candidate_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    synset_id: Mapped[int] = mapped_column(ForeignKey("synset.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    round: Mapped[int] = mapped_column(Integer)
    # accepted | rejected: the crowd's decision when the item was drawn.
    kind: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    judged_label: Mapped[bool | None] = mapped_column(Boolean, default=None)
    judged_by: Mapped[int | None] = mapped_column(ForeignKey("annotator.id"), default=None)
    judged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class VoteUndone(Base):
    """A vote its annotator took back within a minute (migration 0019), kept aside."""

    __tablename__ = "vote_undone"
    __table_args__ = (Index("ix_vote_undone_annotator", "annotator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vote_id: Mapped[int] = mapped_column(Integer)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    answer: Mapped[bool] = mapped_column(Boolean)
    time_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsensusRefit(Base):
    """One model refit the web app ran by itself (migration 0020): when, how far, how."""

    __tablename__ = "consensus_refit"
    __table_args__ = (
        Index(
            "ux_consensus_refit_running",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The highest vote id the refit read.
    votes_seen: Mapped[int] = mapped_column(BigInteger)
    # running | done | failed
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
