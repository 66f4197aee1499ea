"""Consensus: turning votes into decisions (majority, Dawid-Skene, dynamic).

One module per method behind one interface (:class:`base.Aggregator`); pick one
by name from :data:`METHODS`. ``live`` is the cheap incremental rule the web app
runs on each submit, ``recompute`` the full refit behind ``synset consensus``,
``evaluate`` the comparison behind ``synset consensus evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.base import Aggregator
from synset_builder.consensus.dawid_skene import DawidSkene
from synset_builder.consensus.majority import MajorityVote
from synset_builder.consensus.replay import DynamicConsensus


def _dynamic(config: DynamicConfig | None = None) -> Aggregator:
    return DynamicConsensus(config=config or DynamicConfig())


def _dawid_skene(config: DynamicConfig | None = None) -> Aggregator:
    return DawidSkene()


def _majority(config: DynamicConfig | None = None) -> Aggregator:
    return MajorityVote()


METHODS: dict[str, Callable[[DynamicConfig | None], Aggregator]] = {
    "dynamic": _dynamic,
    "dawid-skene": _dawid_skene,
    "majority": _majority,
}

__all__ = [
    "METHODS",
    "Aggregator",
    "DawidSkene",
    "DynamicConfig",
    "DynamicConsensus",
    "MajorityVote",
]
