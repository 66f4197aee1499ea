"""The dynamic rule played over a vote list: ``evaluate``'s replay and ``synset consensus``.

:class:`DynamicConsensus` feeds votes one at a time through the same state and
verdict the web app uses after each submit (:mod:`.model`, :func:`.dynamic.
evaluate_item`): a vote may close its item, a closed item credits its voters,
a voter caught answering without looking is excluded and the decisions their
votes swung are looked at again. Every ``refit_every`` votes, and at the end,
the skills are refitted on the votes so far (what running ``synset consensus``
does) and every decision is looked at again, so an item decided on early
evidence can reopen. Nothing ever reads a vote that comes later in the list.

Two ways to play:

* ``replay`` (``serve_closed=False``): a vote on an item already closed, or by
  an excluded annotator, is skipped, because the web app would not have served
  it; ``used_`` is then what the rule would have paid.
* ``serve_closed=True``: every vote counts (``synset consensus`` over the
  database, where the votes exist whatever happened).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import hard_items
from synset_builder.consensus.base import Encoded, VoteRow, encode
from synset_builder.consensus.dawid_skene import gold_indices, group_indices
from synset_builder.consensus.dynamic import Verdict, credits, evaluate_item
from synset_builder.consensus.model import SkillState, kappa
from synset_builder.decision import Decision

Remaining = Callable[[Hashable], int | None]


@dataclass
class _Item:
    group: Hashable
    initial: bool
    votes: list[tuple[Hashable, int]] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def word(self) -> str:
        return self.verdict.word if self.verdict else Decision.pending


@dataclass
class DynamicConsensus:
    """The dynamic rule: ``replay`` plays votes in order, ``fit`` is a replay of all votes.

    After either: ``labels_``, ``probas_``, ``decided_`` (passed the threshold),
    ``verdicts_``, ``used_`` (votes taken per item), ``skills_`` (kappa per
    annotator), ``excluded_`` (annotator: reason), ``state_`` (the model),
    ``taken_`` (per vote given, whether it was taken).
    """

    config: DynamicConfig = field(default_factory=DynamicConfig)
    refit_every: int = 100
    n_iter: int = 50
    labels_: dict[Hashable, Hashable] = field(default_factory=dict, init=False)
    probas_: dict[Hashable, dict[Hashable, float]] = field(default_factory=dict, init=False)
    decided_: dict[Hashable, bool] = field(default_factory=dict, init=False)
    verdicts_: dict[Hashable, Verdict] = field(default_factory=dict, init=False)
    used_: dict[Hashable, int] = field(default_factory=dict, init=False)
    skills_: dict[Hashable, float] = field(default_factory=dict, init=False)
    excluded_: dict[Hashable, str] = field(default_factory=dict, init=False)
    state_: SkillState | None = field(default=None, init=False)
    taken_: list[bool] = field(default_factory=list, init=False)

    def fit(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> Self:
        """Every vote counts, in the order given (crowd-kit's ``fit``)."""
        return self.replay(votes, gold=gold, groups=groups, classes=classes, serve_closed=True)

    def replay(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
        initial: Collection[Hashable] | None = None,
        serve_closed: bool = False,
        team: Collection[Hashable] | None = None,
        priors: Mapping[Hashable, Sequence[float]] | None = None,
        final_refit: bool = True,
        passes: int = 1,
    ) -> Self:
        """Play ``votes`` in order.

        ``initial``: the initial-subset items (default: the first ``initial_size``
        items of each group to get a vote); ``team``: everyone who can be served,
        so annotators left for an item = team members not excluded who have not
        voted on it, what the web app counts (default: every worker in the list,
        a roster known from the start; never whether they *will* vote, which
        would be reading later votes; empty: no team, nobody is waited for);
        ``priors``: class priors per group to start from (default: uniform until
        the first refit); ``final_refit``:
        refit and look at every item once more at the end (``synset consensus``);
        without it the verdicts are the web app's, between two refits;
        ``passes``: up to this many plays of the list (see :meth:`more_passes`).
        """
        all_classes = list(classes) if classes else list(dict.fromkeys(v[2] for v in votes))
        members = set(team) if team is not None else {w for _, w, _ in votes}
        self.start(all_classes, gold=gold, groups=groups, initial=initial, team=members,
                   priors=priors)  # fmt: skip
        self.play(votes, serve_closed=serve_closed)
        if final_refit:
            self._refit()
        if passes > 1 and not serve_closed:
            self.more_passes(votes, passes - 1)
        return self._finish()

    def more_passes(self, votes: Sequence[VoteRow], passes: int) -> None:
        """Play the votes skipped so far again, in their order, then refit; up to
        ``passes`` times, or until a pass takes none.

        What the web app does after a refit: the items it reopened (less sure with
        the skills learned since) are served again, to annotators who have not
        voted on them, until nothing is open. A single play of a list ends with
        the last refit's reopened items short of votes they would have got: on
        simulated binary crowds an unlucky order ended with 78 items of 108
        reopened and no vote left to play. Each vote is still taken at most once
        and only decides from what was played before it; ``taken_`` then says,
        per vote of ``votes``, whether any pass took it.
        """
        taken = list(self.taken_)
        for _ in range(passes):
            skipped = [n for n, took in enumerate(taken) if not took]
            self.taken_ = []
            self.play([votes[n] for n in skipped])
            if not any(self.taken_):
                break
            for n, took in zip(skipped, self.taken_, strict=True):
                taken[n] = took
            self._refit()
        self.taken_ = taken

    def start(
        self,
        classes: Sequence[Hashable],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        initial: Collection[Hashable] | None = None,
        team: Collection[Hashable] = (),
        priors: Mapping[Hashable, Sequence[float]] | None = None,
    ) -> None:
        """A fresh state; then :meth:`play` once, or once per group with
        :meth:`next_group` before each (``synset consensus``, synset by synset)."""
        self._cix = {c: j for j, c in enumerate(classes)}
        self._classes = list(classes)
        self._gold = {i: self._cix[a] for i, a in (gold or {}).items() if a in self._cix}
        self._groups = groups if groups is not None else {}
        self._one_group: Hashable | None = None
        self._initial = None if initial is None else set(initial)
        self._count: dict[Hashable, int] = {}
        self._items: dict[Hashable, _Item] = {}
        # Per worker, the answers the others gave on the items they voted on, kept
        # as votes arrive (ExclusionRule.one_answer asks for it).
        self._seen: dict[Hashable, list[float]] = {}
        cfg = self.config
        self._st = SkillState(k=len(classes), skill=cfg.newcomer_skill, shrink=cfg.shrink)
        self._st.priors = {g: list(p) for g, p in (priors or {}).items()}
        self.state_ = self._st
        members = set(team)
        self._gone_members = (0, 0)  # (exclusions seen, how many of them are members)
        self._left: Remaining = lambda item: self._team_left(members, item)
        self.taken_ = []
        self._since = 0

    def play(self, votes: Iterable[VoteRow], *, serve_closed: bool = False) -> None:
        """Feed votes in order (see :meth:`replay`)."""
        for item, worker, label in votes:
            it = self._item(item)
            closed = it.word != Decision.pending or worker in self._st.excluded
            self.taken_.append(serve_closed or not closed)
            if closed and not serve_closed:
                continue
            answer = self._cix[label]
            self._saw(it, worker, answer)
            it.votes.append((worker, answer))
            counted = self._st.answered(worker, answer)
            if item in self._gold:
                self._st.add_gold(worker, self._gold[item], answer)
            self._update(item)
            if counted:  # as the web app: a voter is judged on their answers in their window
                self._judge([worker])
            self._since += 1
            if self.refit_every and self._since >= self.refit_every:
                self._since = 0
                self._refit()

    def next_group(self, group: Hashable, initial: Collection[Hashable]) -> dict[Hashable, _Item]:
        """Drop the items played so far and return them; the skills stay. Every vote
        played next belongs to ``group``, whose initial subset is ``initial``.

        ``synset consensus`` plays synset by synset, so it holds one synset's items
        at a time; a later exclusion does not reopen an earlier synset's items here
        (the final pass looks at every item with the final skills anyway).
        ``taken_`` then covers the votes played since the last call only.
        """
        items, self._items = self._items, {}
        self._one_group, self._initial = group, set(initial)
        self.taken_ = []  # per group here: it would grow with every vote of the project
        return items

    # -- the machinery ---------------------------------------------------------

    def _team_left(self, team: set[Hashable], item: Hashable) -> int | None:
        if not team:
            return None
        gone = self._st.excluded
        if self._gone_members[0] != len(gone):  # exclusions are only ever added
            self._gone_members = (len(gone), sum(1 for w in gone if w in team))
        voted = {w for w, _ in self._items[item].votes if w in team and w not in gone}
        return len(team) - self._gone_members[1] - len(voted)

    def _item(self, item: Hashable) -> _Item:
        it = self._items.get(item)
        if it is None:
            group = self._one_group if self._one_group is not None else self._groups.get(item)
            if self._initial is not None:
                initial = item in self._initial
            else:
                n = self._count.get(group, 0)
                initial = item not in self._gold and n < self.config.initial_size
                self._count[group] = n + int(initial)
            it = self._items[item] = _Item(group=group, initial=initial)
        return it

    def _verdict(self, item: Hashable) -> Verdict:
        it = self._items[item]
        if item in self._gold:
            answer = self._gold[item]
            probs = tuple(float(c == answer) for c in range(len(self._classes)))
            return Verdict("decided", answer, probs)
        return evaluate_item(self._st, it.group, it.votes, config=self.config,
                             initial=it.initial, voters_left=self._left(item))  # fmt: skip

    def _update(self, item: Hashable) -> None:
        """New verdict; an item that has just closed credits its voters if it is sure.

        Sure means ``credit_level`` (0.8): an item left undecided at 0.5 would make
        everyone look like chance, while a team of three that agrees on an item
        (0.87 for three newcomers) must learn from it, or it never trusts itself
        enough to accept anything.
        """
        it = self._items[item]
        was = it.word
        it.verdict = self._verdict(item)
        if was == Decision.pending and credits(it.verdict, self.config) and item not in self._gold:
            counted = [(w, label) for w, label in it.votes if w not in self._st.excluded]
            self._st.credit(it.group, counted)
            self._judge([w for w, _ in counted])

    def _judge(self, workers: Sequence[Hashable]) -> None:
        """Exclude the workers the rule catches; look again at the items they voted on."""
        rule = self.config.exclusion
        newly = [w for w in dict.fromkeys(workers) if self._st.judge(w, rule, self._others)]
        if not newly:
            return
        gone = set(newly)
        for item, it in list(self._items.items()):
            if any(w in gone for w, _ in it.votes):
                self._update(item)

    def _saw(self, it: _Item, worker: Hashable, answer: int) -> None:
        mine = self._seen.setdefault(worker, [0.0] * len(self._classes))
        for w, label in it.votes:
            if w != worker:
                mine[label] += 1.0
                self._seen.setdefault(w, [0.0] * len(self._classes))[answer] += 1.0

    def _others(self, worker: Hashable) -> list[float]:
        """Answers the others gave on the items ``worker`` voted on."""
        return self._seen.get(worker, [0.0] * len(self._classes))

    def _refit(self) -> None:
        """Refit skills and priors on the votes so far, then look at every item again."""
        encoded = self.encoded()
        if encoded is not None:
            enc, gidx, names = encoded
            word = np.array([hard_items.WORDS.get(self._items[item].word, 2)
                             for item in enc.items], dtype=np.int8)  # fmt: skip
            if (word == 1).any():
                hard_items.refit(
                    self._st,
                    enc,
                    gold_idx=gold_indices(enc.items, enc.classes, self._gold),
                    group_idx=gidx,
                    group_names=names,
                    word=word,
                    n_iter=self.n_iter,
                    rounds=hard_items.ROUNDS if self.config.hard_items else 0,
                )
        for item, it in self._items.items():
            it.verdict = self._verdict(item)

    def encoded(self) -> tuple[Encoded, np.ndarray, dict[int, Hashable]] | None:
        """The counted votes so far as a refit reads them: encoded, each item's group
        index and each group index's name (None: no vote counts yet). Public for the
        models tried beside this one (``bench/consensus_prototypes.py``)."""
        rows = [
            (item, w, label)
            for item, it in self._items.items()
            for w, label in it.votes
            if w not in self._st.excluded
        ]
        if not rows:
            return None
        enc = encode(rows, classes=list(range(len(self._classes))))
        gidx = group_indices(enc.items, self._groups)
        names: dict[int, Hashable] = {}
        for i, item in enumerate(enc.items):
            names.setdefault(int(gidx[i]), self._groups.get(item))
        return enc, gidx, names

    def _finish(self) -> Self:
        classes = self._classes
        self.labels_, self.probas_, self.decided_, self.verdicts_, self.used_ = {}, {}, {}, {}, {}
        for item, it in self._items.items():
            verdict = it.verdict or self._verdict(item)
            self.verdicts_[item] = verdict
            self.labels_[item] = classes[verdict.top]
            self.probas_[item] = {c: verdict.probs[j] for j, c in enumerate(classes)}
            self.decided_[item] = verdict.word == "decided"
            self.used_[item] = len(it.votes)
        workers = dict.fromkeys(w for it in self._items.values() for w, _ in it.votes)
        self.skills_ = {w: kappa(self._st.confusion(w)) for w in workers}
        self.excluded_ = dict(self._st.excluded)
        self.state_ = self._st
        return self
