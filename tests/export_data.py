"""A small voted-on collection of real photos, ready to export.

A two-level hierarchy (animal > dog > whippet, borzoi; animal > cat > tabby,
Siamese), real test photographs stored through ``store.add_image``, candidates
with provenance, votes from three annotators, Consensus rows (accepted, plus some
rejected and undecided that must never be exported), gold items, and the cases
the export has to get right:

* near-duplicate groups that span two classes (a photo and its crop, accepted
  for sibling breeds): they must land in one split;
* an image accepted for *dog* and *whippet* (goes to whippet);
* an image accepted for *whippet* and *tabby* (ambiguous);
* a JPEG carrying EXIF with a GPS position (must come out without it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.crawl.store import add_image
from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    Gold,
    Image,
    Synset,
    SynsetEdge,
    Vote,
)
from tests.photo_variants import variant

ANIMAL, DOG, CAT = "n00015388", "n02084071", "n02121808"
WHIPPET, BORZOI, TABBY, SIAMESE = "n02091134", "n02090622", "n02123045", "n02123597"
TREE = {
    ANIMAL: ("animal", None),
    DOG: ("dog", ANIMAL),
    CAT: ("domestic cat", ANIMAL),
    WHIPPET: ("whippet", DOG),
    BORZOI: ("borzoi", DOG),
    TABBY: ("tabby", CAT),
    SIAMESE: ("Siamese cat", CAT),
}
LEAVES = (WHIPPET, BORZOI, TABBY, SIAMESE)
LICENSES = ("by", "by-sa", "cc0")


@dataclass
class Collection:
    data_dir: Path
    synsets: dict[str, int] = field(default_factory=dict)
    annotators: list[int] = field(default_factory=list)
    # wnid -> sha256s accepted for it (its own export class by default)
    accepted: dict[str, list[str]] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    specific: str = ""
    ambiguous: str = ""
    with_gps: str = ""
    next_group: int = 1000


def exif_with_gps(photo: Path) -> bytes:
    """The photo re-saved with a camera model and a GPS position in its EXIF."""
    with PILImage.open(photo) as im:
        exif = im.getexif()
        exif[0x0110] = "Secret Camera"  # Model
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (51.0, 30.0, 0.0)
        gps[3], gps[4] = "E", (0.0, 7.0, 0.0)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def accept(
    session: Session,
    col: Collection,
    data: bytes,
    wnid: str,
    *,
    decision: str = "accepted",
    p_yes: float = 0.93,
    n: int = 0,
) -> Image:
    """Store ``data`` and record it as a voted candidate of ``wnid``."""
    image = add_image(session, col.data_dir, data)
    cand = Candidate(
        image_id=image.id,
        synset_id=col.synsets[wnid],
        source="openverse" if n % 2 else "wikimedia",
        url=f"https://example.org/{wnid}/{image.sha256[:12]}.jpg",
        license=LICENSES[n % len(LICENSES)],
        creator=("alice", "bob", "carol")[n % 3],
    )
    session.add(cand)
    session.flush()
    answers = (True, True, False) if decision == "accepted" else (False, False, True)
    for annotator, answer in zip(col.annotators, answers, strict=True):
        session.add(Vote(candidate_id=cand.id, annotator_id=annotator, answer=answer))
    session.add(
        Consensus(candidate_id=cand.id, p_yes=p_yes, decision=decision, method="dynamic", n_votes=3)
    )
    session.flush()
    if decision == "accepted":
        col.accepted.setdefault(wnid, []).append(image.sha256)
    return image


def group(session: Session, col: Collection, images: list[Image]) -> None:
    """Mark images as one near-duplicate group, as the clean stage does."""
    for image in images:
        image.dup_group = col.next_group
    col.next_group += 1
    col.groups.append([i.sha256 for i in images])
    session.flush()


def build_collection(
    session: Session, data_dir: Path, photos: list[Path], *, per_class: int = 14
) -> Collection:
    col = Collection(data_dir=data_dir)
    for wnid, (name, _) in TREE.items():
        synset = Synset(wnid=wnid, name=name, lemmas=[name], gloss=f"a {name}", target=True)
        session.add(synset)
        session.flush()
        col.synsets[wnid] = synset.id
    for wnid, (_, parent) in TREE.items():
        if parent:
            session.add(SynsetEdge(parent_id=col.synsets[parent], child_id=col.synsets[wnid]))
    for k in range(3):
        person = Annotator(username=f"export-voter-{k}", role="annotator")
        session.add(person)
        session.flush()
        col.annotators.append(person.id)
    pool = iter(photos)
    for c, wnid in enumerate(LEAVES):
        for n in range(per_class):
            accept(session, col, next(pool).read_bytes(), wnid, n=n + c)
    # Near duplicates across sibling classes: a photo and its crop (and a smaller copy).
    for k, (a, b) in enumerate([(WHIPPET, BORZOI), (TABBY, SIAMESE), (BORZOI, WHIPPET)]):
        photo = next(pool)
        first = accept(session, col, photo.read_bytes(), a, n=k)
        second = accept(session, col, variant(photo, "crop5"), b, n=k + 1)
        members = [first, second]
        if k == 0:
            members.append(accept(session, col, variant(photo, "resize50"), a, n=k + 2))
        group(session, col, members)
    # Rejected and undecided candidates never reach an export.
    for decision in ("rejected", "rejected", "undecided"):
        image = accept(session, col, next(pool).read_bytes(), TABBY, decision=decision, p_yes=0.1)
        col.rejected.append(image.sha256)
    specific = accept(session, col, next(pool).read_bytes(), WHIPPET)
    accept(session, col, (data_dir / specific.path).read_bytes(), DOG)
    col.specific = specific.sha256
    col.accepted[DOG].remove(specific.sha256)
    col.accepted[WHIPPET].remove(specific.sha256)
    ambiguous = accept(session, col, next(pool).read_bytes(), WHIPPET)
    accept(session, col, (data_dir / ambiguous.path).read_bytes(), TABBY)
    col.ambiguous = ambiguous.sha256
    col.accepted[WHIPPET].remove(ambiguous.sha256)
    col.accepted[TABBY].remove(ambiguous.sha256)
    col.with_gps = accept(session, col, exif_with_gps(next(pool)), SIAMESE).sha256
    # Gold: three accepted true positives and one accepted mistake (precision 0.75).
    cands = session.scalars(
        select(Candidate.id)
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .where(Consensus.decision == "accepted")
        .order_by(Candidate.id)
        .limit(4)
    ).all()
    for cid, answer in zip(cands, (True, True, True, False), strict=True):
        session.add(Gold(candidate_id=cid, answer=answer))
    session.flush()
    return col


def exported_class(col: Collection, sha: str) -> str | None:
    """The leaf class an image is expected under by default."""
    if sha == col.specific:
        return WHIPPET
    for wnid, shas in col.accepted.items():
        if sha in shas:
            return wnid
    return None
