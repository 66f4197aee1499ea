"""The data model of design.md as typed SQLAlchemy 2.0 tables.

Schema changes go through Alembic migrations only (``alembic/versions``); a test
checks that these models and the migrations agree. Nothing here is ever deleted
by a stage: rows carry statuses and reasons instead.
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
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
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


class Candidate(Base):
    """An (image, synset) pair with the provenance of how it was found."""

    __tablename__ = "candidate"
    __table_args__ = (UniqueConstraint("image_id", "synset_id"),)

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


class Annotator(Base):
    """A person who votes (or curates); passwords are stored only as hashes."""

    __tablename__ = "annotator"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    # annotator | curator | admin
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Vote(Base):
    """One answer of one annotator on one candidate; never two per pair."""

    __tablename__ = "vote"
    __table_args__ = (UniqueConstraint("candidate_id", "annotator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), index=True)
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

    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidate.id"), primary_key=True)
    p_yes: Mapped[float] = mapped_column(Float)
    # accepted | rejected | undecided
    decision: Mapped[str] = mapped_column(String(16), index=True)
    method: Mapped[str] = mapped_column(String(32))
    n_votes: Mapped[int] = mapped_column(Integer, default=0)
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
