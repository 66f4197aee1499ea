"""How the exported images were collected and labelled, said from the data itself.

The datasheet and croissant.json's ``rai:`` fields used to describe the pipeline
as designed (WordNet searches, gold items, the dynamic consensus) whatever an
export's images had been through: a set imported from a local folder and
decided by majority vote was said to be searched for and modelled. Each sentence
here is chosen from what the database and the exported rows hold: the
candidates' sources, the consensus methods of the accepted decisions, whether
gold items or curator decisions exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synset_builder.db.models import Candidate, Consensus, ExpertDecision, Gold, Synset
from synset_builder.decision import Decision

SEARCHED = {"openverse": "Openverse", "wikimedia": "Wikimedia Commons", "flickr": "Flickr"}
METHODS = {
    "majority": "majority vote (no model)",
    "dynamic": "the dynamic consensus model (more votes where a synset is hard)",
    "dawid-skene": "the Dawid-Skene model (annotators weighed by estimated skill)",
}


def source_kind(source: str) -> str:
    """``"dir"`` of ``"dir:/photos"``: the kind, without a local path."""
    return (source or "").split(":", 1)[0]


def _kinds(sources: Mapping[str, int]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for source, n in sources.items():
        kinds[source_kind(source)] += n
    return kinds


def collection_text(sources: Mapping[str, int]) -> str:
    """How the candidates were found, one clause per kind of source, with counts."""
    kinds = _kinds(sources)
    parts = []
    searched = {k: n for k, n in kinds.items() if k in SEARCHED}
    if searched:
        names = ", ".join(f"{SEARCHED[k]} ({n})" for k, n in sorted(searched.items()))
        parts.append(f"found by searching {names} with each synset's WordNet lemmas (English)")
    if kinds.get("urls"):
        parts.append(f"listed by the builder in a URL file ({kinds['urls']})")
    if kinds.get("dir"):
        parts.append(
            f"imported from a local folder whose sub-folders named the classes ({kinds['dir']})"
        )
    other = sum(n for k, n in kinds.items() if k not in {*SEARCHED, "urls", "dir"})
    if other:
        parts.append(f"from other sources ({other})")
    return (
        "The exported images were " + "; ".join(parts or ["of unrecorded origin"]) + ". "
        "Candidates were filtered for quality and near duplicates, then voted on."
    )


def bias_text(sources: Mapping[str, int]) -> str:
    """The selection bias the sources bring."""
    kinds = _kinds(sources)
    said = []
    if any(k in SEARCHED for k in kinds):
        said.append(
            "Queries are English WordNet lemmas: images are those English-language searches "
            "find on the sources used, which over-represent some regions, styles and "
            "photographers."
        )
    if kinds.get("dir") or kinds.get("urls"):
        said.append(
            "Images from a local folder or a URL list carry the choices of whoever gathered them."
        )
    return " ".join(said) or "The images' origin is not recorded."


def methods_of(session: Session, wnids: Iterable[str]) -> Counter[str]:
    """Accepted decisions per consensus method, over the synsets the export drew from."""
    stmt = (
        select(Consensus.method, func.count())
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .join(Synset, Synset.id == Candidate.synset_id)
        .where(Consensus.decision == Decision.accepted, Synset.wnid.in_(sorted(wnids)))
        .group_by(Consensus.method)
    )
    return Counter({str(m): int(n) for m, n in session.execute(stmt)})


def labelling_text(session: Session, methods: Mapping[str, int]) -> str:
    """Who labelled, how the votes were turned into decisions, what checked them."""
    how = "; ".join(f"{METHODS.get(m, m)}: {n} images" for m, n in sorted(methods.items()))
    said = [
        "Annotators answered whether an image shows the synset; each image was accepted "
        f"by {how or 'a curator'}."
    ]
    if session.execute(select(Gold.candidate_id).limit(1)).first() is not None:
        said.append("Gold items with known answers were mixed into annotators' tasks.")
    if session.execute(select(ExpertDecision.id).limit(1)).first() is not None:
        said.append("A curator's decision overrides the consensus where one was made.")
    return " ".join(said)


def model_based(methods: Mapping[str, int]) -> bool:
    """Whether P(yes) is a model's estimate (not a vote share) for most images."""
    model = sum(n for m, n in methods.items() if m != "majority")
    return model > methods.get("majority", 0)
