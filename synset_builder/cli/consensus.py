"""``synset consensus``: recompute decisions from the votes, and compare methods."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synset_builder.cli.common import (
    SettingsHelp,
    SettingsHelpGroup,
    open_session,
    print_json,
    settings,
)
from synset_builder.errors import InvalidInput

if TYPE_CHECKING:
    from synset_builder.config.consensus import DynamicConfig
    from synset_builder.consensus.recompute import Outcome

consensus_app = typer.Typer(
    help="Turn votes into decisions (dynamic consensus, Dawid-Skene, majority).",
    invoke_without_command=True,
    cls=SettingsHelpGroup,
)


def _dynamic_config(
    threshold: float | None,
    max_votes: int | None,
    initial_size: int | None,
    initial_votes: int | None,
    skill_floor: float | None = None,
) -> DynamicConfig:
    """The options given, the rest from the settings (the rule the web app applies live)."""
    from pydantic import ValidationError

    try:
        return settings().consensus.with_options(
            threshold=threshold,
            max_votes=max_votes,
            initial_size=initial_size,
            initial_votes=initial_votes,
            skill_floor=skill_floor,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "option"
        raise InvalidInput(f"Invalid consensus option {where}: {first['msg']}.") from exc


class _Bars:
    """One progress bar per pass over the synsets (replay, then write), on stderr
    when it is a terminal: a full recompute at ImageNet scale takes minutes."""

    def __enter__(self) -> _Bars:
        self._bar = None
        self._stage = ""
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.__exit__()
            self._stage = stage
            self._bar = tqdm(total=total, desc=f"consensus {stage}", unit="synset", disable=None)
        self._bar.update(done - self._bar.n)

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _workers(asked: int | None) -> int:
    """Processes for the final pass: the cores there are, at most 4 (the database
    server needs its share of them too); ignored where the pass runs in one."""
    import os

    return asked if asked is not None else max(1, min(4, os.cpu_count() or 1))


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


@consensus_app.callback()
def consensus(
    ctx: typer.Context,
    method: str = typer.Option("dynamic", "--method", help="dynamic, dawid-skene or majority."),
    threshold: float | None = typer.Option(
        None,
        help="Confidence needed to accept or reject [settings: {setting:consensus.threshold}].",
    ),
    max_votes: int | None = typer.Option(
        None,
        "--max-votes",
        help="Vote cap before 'undecided' [settings: {setting:consensus.max_votes}].",
    ),
    initial_size: int | None = typer.Option(
        None, help="Initial subset size per synset [settings: {setting:consensus.initial_size}]."
    ),
    initial_votes: int | None = typer.Option(
        None, help="Votes each initial item gets [settings: {setting:consensus.initial_votes}]."
    ),
    skill_floor: float | None = typer.Option(
        None,
        help="Exclude annotators whose kappa (0 chance, 1 perfect) stays below this "
        "[settings: {setting:consensus.skill_floor}].",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Processes for the final pass over the synsets (PostgreSQL) "
        "[default: the CPU count, at most 4; 1 on SQLite].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    refit_id: int | None = typer.Option(
        None, "--refit-id", hidden=True, help="Run as the web app's refit N (its log row)."
    ),
) -> None:
    """Recompute every decision from all votes (idempotent) and print a summary per synset."""
    if ctx.invoked_subcommand is not None:
        return
    if refit_id is not None:
        _refit(refit_id)
        return
    from synset_builder.consensus.recompute import RecomputeConfig, recompute

    dynamic = _dynamic_config(threshold, max_votes, initial_size, initial_votes, skill_floor)
    cfg = RecomputeConfig(method=method, dynamic=dynamic)
    conf = settings()
    # The refit's scratch files go in the data folder, beside what they are made from.
    with open_session(conf) as session, _Bars() as bars:
        outcome = recompute(session, cfg, progress=bars.update, workers=_workers(workers),
                            scratch_dir=conf.ensure_data_dir())  # fmt: skip
    _print_outcome(outcome, method, as_json)


def _print_outcome(outcome: Outcome, method: str, as_json: bool) -> None:
    """A table of the decisions per synset and the excluded annotators, or JSON."""
    if as_json:
        print_json(
            {
                "method": method,
                "synsets": [s.as_json() for s in outcome.synsets],
                "excluded": outcome.excluded,
            }
        )
        return
    if not outcome.synsets:
        typer.echo("No votes yet; nothing to decide.")
    header = ["wnid", "name", "accepted", "rejected", "undecided", "pending", "votes",
              "precision", "hard"]  # fmt: skip
    table = [
        [s.wnid, s.name[:28], str(s.accepted), str(s.rejected), str(s.undecided),
         str(s.pending), _fmt(s.mean_votes, "{:.2f}"), _fmt(s.precision, "{:.3f}"),
         _fmt(s.hard_share, "{:.2f}")]
        for s in outcome.synsets
    ]  # fmt: skip
    if table:
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        for row in [header, *table]:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        typer.echo(
            f"method: {method}; votes = mean votes per decided item; precision = the "
            "model's belief in its accepted items, not a measured figure ('synset audit' "
            "measures it); hard = share of items the crowd cannot tell, learned by the "
            "refit (docs/consensus.md)."
        )
    for name, reason in sorted(outcome.excluded.items()):
        typer.echo(f"excluded {name}: {reason}")
    closed = sum(s.undecided for s in outcome.synsets)
    if method == "dynamic" and closed and not any(s.accepted + s.rejected for s in outcome.synsets):
        typer.echo(NOTHING_DECIDED)


# Why a dynamic run can decide nothing, and what the curator can do about it.
NOTHING_DECIDED = (
    "No item passed the threshold. With few voters per item, or answers nearly all one "
    "way, the model cannot tell careful voters from ones who always give the same "
    "answer: gold items ('synset gold add', with some true noes) measure them directly, "
    "and '--method majority' decides by head count (docs/consensus.md)."
)


def _refit(refit_id: int) -> None:
    """The web app's child: the recompute at a lower priority, one synset a transaction
    (``writer``), its end recorded in the last one (a crash leaves the row to the server)."""
    import os

    from synset_builder.consensus.recompute import RecomputeConfig, recompute
    from synset_builder.consensus.refit import finish

    os.nice(10)
    cfg = settings()
    with open_session(cfg) as session:
        writer = session.get_bind()
        outcome = recompute(session, RecomputeConfig(dynamic=cfg.consensus), writer=writer,
                            scratch_dir=cfg.ensure_data_dir())  # fmt: skip
        decided = sum(s.accepted + s.rejected for s in outcome.synsets)
        pending = sum(s.pending for s in outcome.synsets)
        detail = (f"{len(outcome.synsets)} synsets, {decided} decided, {pending} pending, "
                  f"{len(outcome.excluded)} excluded")  # fmt: skip
        if not finish(session, refit_id, "done", detail):
            raise InvalidInput(f"Refit {refit_id} is not running (abandoned or unknown).")


@consensus_app.command("refits")
def refits_cmd(
    last: int = typer.Option(10, "--last", min=1, max=1000, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """The model refits the web app ran by itself (setting consensus_refit_votes)."""
    from synset_builder.consensus.refit import last_refits

    with open_session(settings()) as session:
        rows = last_refits(session, last)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No refit yet.")
    for r in rows:
        typer.echo(_refit_line(r))


def _refit_line(r: dict) -> str:
    ended = f", ended {r['finished_at'][:19]}" if r["finished_at"] else ""
    detail = f": {r['detail']}" if r["detail"] else ""
    return (f"refit {r['id']} {r['status']} (started {r['started_at'][:19]}{ended}, "
            f"votes up to id {r['votes_seen']}){detail}")  # fmt: skip


@consensus_app.command("evaluate", cls=SettingsHelp)
def evaluate_cmd(
    votes: Path = typer.Argument(..., help="CSV: item, worker, label (any header)."),
    truth: Path = typer.Option(..., "--truth", help="CSV: item, truth (any header)."),
    methods: list[str] = typer.Option(
        [], "--method", help="Method to evaluate (repeatable); default: all."
    ),
    max_votes: int | None = typer.Option(
        None, "--max-votes", help="Use at most N votes/item (every method) [default: all]."
    ),
    threshold: float | None = typer.Option(
        None,
        help="Dynamic: confidence needed to stop [settings: {setting:consensus.threshold}].",
    ),
    initial_size: int | None = typer.Option(
        None,
        help="Dynamic: initial subset size [settings: {setting:consensus.initial_size}].",
    ),
    initial_votes: int | None = typer.Option(
        None,
        help="Dynamic: votes each initial item waits for "
        "[settings: {setting:consensus.initial_votes}].",
    ),
    orders: int = typer.Option(
        1,
        "--orders",
        help="Replay K vote orders: 1 = file order, K>1 = K random shuffles (K <= 1000).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random orders."),
    spammers: float = typer.Option(
        0.0, "--spammers", help="Add F x workers always-same-answer workers (0-5)."
    ),
    passes: int | None = typer.Option(
        None,
        "--passes",
        show_default=False,
        help="Dynamic: how many times to play the vote list. After the last refit, the items "
        "it reopened get the votes they skipped, as the web app serves them again "
        "(default 2; 1 = stop at the end of the list; at most 10).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per method."),
) -> None:
    """Accuracy of each method against known answers, and the votes it spent per item.

    Figures are means over the replayed orders; accuracy and expected accuracy
    (the model's own mean top probability) are over the items with truth.
    """
    from synset_builder.consensus import METHODS
    from synset_builder.consensus.evaluate import PASSES, evaluate

    passes = PASSES if passes is None else passes

    # The project's settings, as the web app applies them; --max-votes caps every
    # method (evaluate() sets it on the dynamic rule too).
    cfg = _dynamic_config(threshold, None, initial_size, initial_votes)
    notes: list[str] = []
    results = evaluate(votes, truth, methods=methods or list(METHODS), max_votes=max_votes,
                       config=cfg, orders=orders, seed=seed, spammers=spammers,
                       passes=passes, notes=notes)  # fmt: skip
    for note in notes:  # on stderr: --json's stdout stays one JSON document
        typer.echo(f"note: {note}", err=True)
    if as_json:
        print_json([r.as_json() for r in results])
        return
    binary = any(r.binary for r in results)
    header = ["method", "accuracy", "votes/item", "acc min-max", "decided", "expected"]
    header += ["precision", "recall"] if binary else []
    table = []
    for r in results:
        row = [r.method, f"{r.accuracy:.4f}", f"{r.mean_votes:.2f}",
               f"{r.accuracy_min:.4f}-{r.accuracy_max:.4f}" if orders > 1 else "-",
               f"{r.decided:.3f}",
               f"{r.expected_accuracy:.4f}"]  # fmt: skip
        if binary:
            row += [_fmt(r.precision, "{:.4f}"), _fmt(r.recall, "{:.4f}")]
        table.append(row)
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        cells = [c.rjust(w) for c, w in zip(row, widths, strict=True)]
        typer.echo("  ".join([row[0].ljust(widths[0]), *cells[1:]]))
    replayed = "file order" if orders == 1 else f"mean of {orders} random orders (seed {seed})"
    extra = f"; spammers added: {spammers:g} x workers" if spammers else ""
    for r in results:
        if r.method != "dynamic":
            continue
        extra += f"; dynamic: {passes} passes" if passes != 1 else "; dynamic: one pass"
        if r.excluded_spammers is not None:
            extra += f", {r.excluded_spammers:.0%} of the spammers excluded"
        if r.excluded_workers:
            extra += f", {r.excluded_workers:g} real workers excluded"
    typer.echo(f"{results[0].items} items with truth; {replayed}{extra}.")


@consensus_app.command("annotators")
def annotators_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Annotator quality as of the last 'synset consensus': skill, gold, exclusion."""
    from synset_builder.consensus.quality import quality_report
    from synset_builder.consensus.refit import last_refits

    with open_session(settings()) as session:
        rows = quality_report(session)
        refits = last_refits(session, 1)
    if as_json:
        print_json(rows)
        return
    if refits:
        typer.echo(f"last {_refit_line(refits[0])}")
    if not rows:
        typer.echo("No annotator measured yet; run 'synset consensus' first.")
        return
    typer.echo(
        f"{'annotator':<24} {'votes':>6} {'gold':>9} {'skill':>5} {'sens':>5} {'spec':>5}  status"
    )
    for r in rows:
        gold = f"{r['gold_correct']}/{r['gold_total']}"
        status = f"excluded: {r['exclusion_reason']}" if r["excluded"] else "ok"
        typer.echo(
            f"{r['username'][:24]:<24} {r['votes']:>6} {gold:>9} {r['skill']:>5.2f} "
            f"{r['sensitivity']:>5.2f} {r['specificity']:>5.2f}  {status}"
        )
    typer.echo("skill: balanced accuracy (0.5 chance, 1 perfect); sens / spec: right on yes / no.")


def register(app: typer.Typer) -> None:
    app.add_typer(consensus_app, name="consensus")
