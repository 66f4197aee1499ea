"""The consensus rule's config (``settings.consensus``), shared by every path that decides.

This model *is* the :class:`DynamicConfig` the stopping rule runs with: ``synset
consensus``, the web app's live updates and ``evaluate``'s replay all receive
``settings.consensus`` (or a copy with command options), so they decide by the
same rule and each default and limit is written once. It lives beside
:class:`Settings` rather than in ``synset_builder/consensus``, whose package
imports numpy: reading the settings (``synset status``, alembic) must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from synset_builder.config.flat import Section

if TYPE_CHECKING:
    from synset_builder.consensus.exclusion import ExclusionRule


class DynamicConfig(Section):
    """The stopping rule, the skill model's hyper-parameters and the web app's refits."""

    flat_prefix = "consensus_"

    threshold: float = Field(
        0.9,
        gt=0.5,
        lt=1.0,
        description="Posterior an item's answer needs to be accepted or rejected.",
    )
    initial_size: int = Field(
        10,
        ge=0,
        description="Items per synset in its initial subset, which gets a full round of votes (the"
        " sample a curator can audit).",
    )
    initial_votes: int = Field(
        10,
        ge=1,
        description="Votes each item of the initial subset waits for (capped by the annotators "
        "there are).",
    )
    max_votes: int = Field(
        20, ge=1, description="Votes after which an item still unsure is undecided."
    )
    newcomer_skill: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description="An unmeasured annotator's skill, from chance (0) to perfect (1); 0.3 is a "
        "binary answer right 65% of the time.",
    )
    shrink: float = Field(
        2.0, ge=0.0, description="Pseudo-votes of the newcomer skill in every annotator's record."
    )
    requeue_votes: int = Field(
        3,
        ge=1,
        description="Fresh votes a requeued candidate needs before it may be decided again.",
    )
    skill_floor: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Kappa (0 chance, 1 perfect) below which an annotator is excluded (spammers, "
        "random clickers).",
    )
    exclusion_votes: int = Field(
        20,
        ge=1,
        description="Decided votes an annotator gives before the exclusion rule judges them.",
    )
    strong_skill: float = Field(
        0.8,
        gt=0.0,
        lt=1.0,
        description="Skill of the votes still to come that the 'more votes cannot change it' stop "
        "assumes.",
    )
    hard_items: bool = Field(
        True,
        description="Learn each synset's share of items the crowd cannot tell, and mix an item's"
        " posterior toward the prior by how hard it looks (see docs/consensus.md).",
    )
    credit_level: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="A closed item at least this sure of its answer measures its voters' skills.",
    )
    # A refit is due after this many new votes and a tenth as many as the last one saw,
    # so at ImageNet scale (minutes a refit) at most one runs, at most half the time.
    refit_votes: int = Field(
        5000,
        ge=0,
        description="The web app refits the model by itself (a `synset consensus` in a child "
        "process, one at a time) once this many votes arrived since the last refit (and a "
        "tenth as many as it saw); 0 never. 5000 refits a small team's project every few "
        "hundred pages while skills and priors still move.",
    )
    refit_min_seconds: float = Field(
        60.0,
        ge=0.0,
        description="Seconds the web app waits after a refit ended before it starts the "
        "next, however fast votes arrive (and at least as long as the last one took, if "
        "that took over 10 s): under heavy voting refits would otherwise run back to back "
        "and take a core from the server.",
    )

    @property
    def exclusion(self) -> ExclusionRule:
        """The exclusion rule these settings describe (imported late: it needs numpy)."""
        from synset_builder.consensus.exclusion import ExclusionRule

        return ExclusionRule(floor=self.skill_floor, min_votes=self.exclusion_votes)
