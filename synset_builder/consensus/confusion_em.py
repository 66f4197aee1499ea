"""Expectation-maximisation over per-annotator confusion matrices.

Shared by Dawid-Skene and the dynamic method: both model each annotator as a
confusion matrix ``P(vote = l | truth = k)`` and each item's truth as drawn from
a class prior, then alternate between the posterior over truths (E) and the
counts that re-estimate confusions and priors (M). Written by hand (about 60
lines of numpy) because crowd-kit, the maintained implementation, currently
fails with scikit-learn >= 1.7 and pulls in transformers.

Two knobs separate the methods:

* ``alpha``: additive smoothing of every confusion cell (classic Dawid-Skene
  uses a tiny one just to keep logarithms finite);
* ``shrink``: pseudo-votes that pull each annotator's confusion toward the pooled
  confusion of everyone. An annotator with three votes then looks like an
  average annotator, not a perfect or a useless one; one with three hundred
  looks like themself. This is what makes a posterior after 2-3 votes trustworthy
  enough to stop on.

Gold items are clamped to their known class in every E-step, so they measure the
annotators without being re-estimated. Priors may differ per group (synset):
"Burmese cat" candidates are mostly negatives, "cat" candidates mostly positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synset_builder.consensus.base import Encoded, vote_counts


@dataclass(frozen=True)
class EMResult:
    probas: np.ndarray  # items x classes posterior
    confusion: np.ndarray  # workers x truth x vote
    priors: np.ndarray  # groups x classes
    iterations: int
    temperatures: np.ndarray  # per group


def _clamp(probas: np.ndarray, gold_idx: np.ndarray) -> np.ndarray:
    known = gold_idx >= 0
    if known.any():
        probas[known] = 0.0
        probas[known, gold_idx[known]] = 1.0
    return probas


def shrink_target(counts: np.ndarray, alpha: float) -> np.ndarray:
    """A symmetric confusion with the pool's mean accuracy on the diagonal.

    Symmetric on purpose: shrinking toward the raw pooled confusion would copy a
    spammer's favourite answer ("always dog") into every newcomer's matrix.
    """
    k = counts.shape[1]
    pooled = counts.sum(axis=0) + alpha
    pooled /= pooled.sum(axis=1, keepdims=True)
    accuracy = float(np.trace(pooled)) / k if k > 1 else 1.0
    target = np.full((k, k), (1.0 - accuracy) / max(k - 1, 1))
    np.fill_diagonal(target, accuracy)
    return target


TEMPERATURES = np.array([0.15, 0.25, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3, 1.5])


def vote_loglik(
    enc: Encoded, confusion: np.ndarray, temps: np.ndarray, group_idx: np.ndarray
) -> np.ndarray:
    """Per vote, ``log P(vote | truth = k)`` under its voter's confusion tempered by its group.

    Tempering raises the confusion to the power ``t`` and renormalises: ``t < 1``
    pulls every annotator toward chance (a hard synset), ``t > 1`` sharpens them.
    """
    if not (temps != 1.0).any():  # untempered: each voter's rows once, not once a vote
        return worker_log_rows(confusion)[enc.worker_idx, :, enc.label_idx]
    t = temps[group_idx[enc.item_idx]][:, None, None]
    log_rows = np.log(confusion[enc.worker_idx]) * t  # votes x truth x vote
    log_rows -= np.logaddexp.reduce(log_rows, axis=2, keepdims=True)
    return log_rows[np.arange(len(enc.label_idx)), :, enc.label_idx]


def worker_log_rows(confusion: np.ndarray) -> np.ndarray:
    """Per voter, ``log P(vote | truth)`` with each row renormalised (voters x truth x
    vote): what :func:`vote_loglik` gathers per vote, computed per voter, since
    voters are a few hundred and votes millions (the chunked refit reads it too)."""
    log_rows = np.log(confusion)
    log_rows -= np.logaddexp.reduce(log_rows, axis=2, keepdims=True)
    return log_rows


def fit_temperatures(
    enc: Encoded, confusion: np.ndarray, soft: np.ndarray, group_idx: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per group, the temperature that best explains its credited votes (a grid search).

    One number per synset is what its initial subset can support (100 votes
    share it), unlike a confusion per annotator and synset. A mild penalty
    on ``log t`` keeps groups without evidence at 1.
    """
    vote_group = group_idx[enc.item_idx]
    scores = np.empty((len(TEMPERATURES), n_groups))
    for j, t in enumerate(TEMPERATURES):
        ll = (soft * vote_loglik(enc, confusion, np.full(n_groups, t), group_idx)).sum(axis=1)
        scores[j] = np.bincount(vote_group, weights=ll, minlength=n_groups)
        scores[j] -= np.log(t) ** 2
    return TEMPERATURES[scores.argmax(axis=0)]


def m_step(
    enc: Encoded,
    probas: np.ndarray,
    soft: np.ndarray,
    group_idx: np.ndarray,
    n_groups: int,
    *,
    alpha: float,
    shrink: float,
    temper: bool = False,
    prior_alpha: float = 1.0,
    template: np.ndarray | None = None,
    prior_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confusions, group priors and group temperatures that best explain the credit.

    ``soft`` is, per vote, the truth distribution its voter is credited against.
    ``template`` (a fixed confusion) replaces the pool as the shrinkage target;
    ``prior_weight`` (0 or 1 per item) limits which items estimate the priors.
    """
    k = enc.n_classes
    counts = np.zeros((enc.n_workers, k, k))
    np.add.at(counts, (enc.worker_idx, slice(None), enc.label_idx), soft)
    target = shrink_target(counts, alpha) if template is None else template
    confusion = counts + alpha + shrink * target[None, :, :]
    confusion /= confusion.sum(axis=2, keepdims=True)
    temps = np.ones(n_groups)
    if temper and len(enc.item_idx):
        temps = fit_temperatures(enc, confusion, soft, group_idx, n_groups)
    priors = np.full((n_groups, k), prior_alpha)
    np.add.at(priors, group_idx, probas if prior_weight is None else probas * prior_weight[:, None])
    priors /= priors.sum(axis=1, keepdims=True)
    return confusion, priors, temps


def e_step(
    enc: Encoded,
    confusion: np.ndarray,
    priors: np.ndarray,
    group_idx: np.ndarray,
    temps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Log-posterior over each item's true class, and each vote's log-likelihood row."""
    log_post = np.log(priors[group_idx])
    per_vote = vote_loglik(enc, confusion, temps, group_idx)
    np.add.at(log_post, enc.item_idx, per_vote)
    return log_post, per_vote


def normalise(log_p: np.ndarray) -> np.ndarray:
    """Rows of log-probabilities (unnormalised) as probabilities."""
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _credit(
    enc: Encoded,
    log_post: np.ndarray,
    per_vote: np.ndarray,
    gold: np.ndarray,
    loo: bool,
    support: np.ndarray,
) -> np.ndarray:
    """Per vote, the truth its voter is scored against.

    Leave-one-out (``loo``): the item's posterior *without this vote*, so nobody
    is scored against their own answer; otherwise an item with one vote would
    prove its voter right and skills would inflate early on, which is exactly
    when the dynamic rule must not be overconfident. ``support`` (a weight per
    vote, 0 to 1) keeps only votes on calibration items (see :func:`fit_em`).
    """
    soft = (
        normalise(log_post[enc.item_idx] - per_vote) if loo else normalise(log_post)[enc.item_idx]
    )
    known = gold[enc.item_idx] >= 0
    if known.any():
        soft[known] = 0.0
        soft[known, gold[enc.item_idx][known]] = 1.0
    return soft * support[:, None]


def _start(enc: Encoded, gold: np.ndarray, loo: bool) -> tuple[np.ndarray, np.ndarray]:
    """EM's starting point: the posteriors as vote shares (gold clamped), and each
    vote's soft label, which with ``loo`` is the share of the item's *other* votes."""
    k = max(enc.n_classes, 1)
    counts = vote_counts(enc)
    totals = counts.sum(axis=1, keepdims=True)
    probas = _clamp(np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / k), gold)
    if not loo:
        return probas, probas[enc.item_idx]
    known = gold[enc.item_idx] >= 0
    n_others = totals[enc.item_idx] - 1
    own = np.zeros((len(enc.label_idx), k))
    own[np.arange(len(enc.label_idx)), enc.label_idx] = 1.0
    others = counts[enc.item_idx] - own
    soft = np.where(n_others > 0, others / np.maximum(n_others, 1), 1.0 / k)
    soft[known] = probas[enc.item_idx][known]
    return probas, soft


def fit_em(
    enc: Encoded,
    *,
    gold_idx: np.ndarray | None = None,
    group_idx: np.ndarray | None = None,
    alpha: float = 0.01,
    shrink: float = 0.0,
    temper: bool = False,
    loo: bool = False,
    calibration: np.ndarray | None = None,
    n_iter: int = 100,
    tol: float = 1e-6,
    template: np.ndarray | None = None,
    prior_alpha: float = 1.0,
    warm: EMResult | None = None,
) -> EMResult:
    """Run EM from the (gold-clamped) vote shares until the posteriors settle.

    With ``temper``, each group (synset) also gets a temperature applied to
    every annotator's confusion: the same person is less reliable on "Burmese
    cat" than on "cat".

    ``calibration`` (a boolean per item, or a weight in [0, 1]) limits which
    items measure the annotators, and how much (gold items always do, fully).
    The dynamic rule passes the items decided so far: items still being voted
    on, or stopped at the cap after disagreeing votes, would teach it that
    everyone is near chance. A weight lets a model count an item in part (how
    ordinary it looks, say); a boolean gives the same floats as weights of 0
    and 1.

    ``warm``: start from an earlier fit of the same votes (its posteriors,
    confusions and priors) instead of the vote shares: a refit with new weights
    then takes a few iterations, not a dozen.
    """
    gold = np.full(enc.n_items, -1) if gold_idx is None else gold_idx
    groups = np.zeros(enc.n_items, dtype=np.int64) if group_idx is None else group_idx
    n_groups = int(groups.max()) + 1 if len(groups) else 1
    opts = {"alpha": alpha, "shrink": shrink, "temper": temper, "template": template,
            "prior_alpha": prior_alpha}  # fmt: skip
    probas, soft = _start(enc, gold, loo)
    support = np.ones(len(enc.item_idx))
    if calibration is not None:
        weight = np.maximum(np.asarray(calibration, dtype=float), (gold >= 0).astype(float))
        support = weight[enc.item_idx]
        # Items that calibrate the annotators also estimate the class priors: an
        # item with one or two votes says more about the prior than about itself.
        opts["prior_weight"] = weight
    soft = soft * support[:, None]
    if warm is None:
        confusion, priors, temps = m_step(enc, probas, soft, groups, n_groups, **opts)
    else:
        probas, confusion, priors = warm.probas, warm.confusion, warm.priors
        temps = warm.temperatures
    iterations = 0
    while iterations < n_iter:
        iterations += 1
        log_post, per_vote = e_step(enc, confusion, priors, groups, temps)
        new = _clamp(normalise(log_post), gold)
        soft = _credit(enc, log_post, per_vote, gold, loo, support)
        confusion, priors, temps = m_step(enc, new, soft, groups, n_groups, **opts)
        delta = float(np.abs(new - probas).max()) if len(new) else 0.0
        probas = new
        if delta < tol:
            break
    return EMResult(
        probas=probas,
        confusion=confusion,
        priors=priors,
        iterations=iterations,
        temperatures=temps,
    )
