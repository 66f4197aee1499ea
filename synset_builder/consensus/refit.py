"""The web app's own refits: a ``synset consensus`` in a child process, now and then.

Between refits the live path (:mod:`.live`) only adds credits to the voters'
records; skills measured on all the votes and the class priors move only when
the model is refitted. The web app therefore starts one by itself once
``consensus_refit_votes`` votes have arrived since the last one:

* The submit path only counts votes in memory (:meth:`AutoRefit.counted`). Every
  ``check_every`` votes a process asks the database, after its submit has
  committed and in a thread of its own, whether a refit is due: one
  ``INSERT ... SELECT`` that reads the highest vote id and the last refit's row
  (both by primary key) and writes a ``running`` row only when due.
* At most one refit runs across all server processes: a unique index over the
  ``running`` rows (migration 0020) makes every other insert fail.
* The refit is the same command a curator runs (``python -m synset_builder.cli
  consensus --refit-id N``) in a child process at a lower CPU priority, so the
  server's memory and threads are untouched. The child marks its row ``done`` in
  the transaction that writes the decisions. The server thread that started it
  waits for it, touches the row's heartbeat, and marks it ``failed`` with the
  child's last line of error output if it exits any other way.
* Due means ``consensus_refit_votes`` new votes and a tenth as many new votes as
  the last refit saw (``GROWTH``): a refit replays every vote, so a fixed interval
  would make their total cost grow with the square of the project. A refit that
  took over ``SLOW`` is also not due before as long again has passed since it
  ended, nor any before ``consensus_refit_min_seconds`` (60) has, so under heavy
  voting refits take a core a small share of the time.
* A running row whose heartbeat stopped (its server died) is marked ``failed``
  as abandoned by the next check, and the next refit can start. So does the
  next one after a failure: due again ``consensus_refit_votes`` votes after the
  failed one, not at once (a refit that crashes is not restarted on every page).

"New votes" are counted as vote ids past the last refit's highest one, so ids a
rolled-back insert used up count too: a refit may come a little early, never late.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    DateTime,
    Engine,
    String,
    and_,
    bindparam,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from synset_builder.config import Settings
from synset_builder.db.models import ConsensusRefit, Vote

log = logging.getLogger(__name__)

# The watching thread touches the heartbeat this often; a running row untouched for
# STALE is abandoned. Generous: on SQLite the heartbeat waits while the refit writes.
HEARTBEAT_S = 30.0
STALE = timedelta(minutes=10)
# Refits slower than this are followed by a pause as long (see claim); quicker ones
# only by the minimum gap (consensus_refit_min_seconds).
SLOW = timedelta(seconds=10)
# A refit replays every vote, so besides ``consensus_refit_votes`` new votes one also
# waits for a tenth as many new votes as the last one saw: refits then come at
# geometric steps, and all of a project's refits together cost a fixed multiple of
# one pass over its votes instead of growing with the square of its size.
GROWTH = 10
DETAIL = 500  # the column's size

_T = ConsensusRefit.__table__


def _claim_statement() -> Executable:
    """Insert a running row if ``every`` vote ids, and a tenth of the last refit's,
    arrived since the last refit's."""
    now = bindparam("now", type_=DateTime(timezone=True))
    seen = select(func.coalesce(func.max(Vote.id), 0).label("n")).subquery()
    last = select(ConsensusRefit.votes_seen).order_by(ConsensusRefit.id.desc()).limit(1)
    before = func.coalesce(last.scalar_subquery(), 0)
    new = seen.c.n - before
    due = and_(new >= bindparam("every"), new * GROWTH >= before)
    rows = select(now, now, seen.c.n, literal("running", String), bindparam("who", type_=String))
    return (
        insert(_T)
        .from_select(["started_at", "heartbeat_at", "votes_seen", "status", "detail"],
                     rows.where(due))
        .returning(_T.c.id)
    )  # fmt: skip


CLAIM = _claim_statement()


def claim(engine: Engine, every: int, min_gap: timedelta = timedelta(0)) -> int | None:
    """Start a refit's row if one is due and none runs; its id, or None.

    Two short transactions: abandoned rows are failed first, so that the claim
    itself is one statement that either inserts or finds the index taken. A refit
    is not due either, if the last one ended well, before ``min_gap`` has passed
    since it ended, nor, if it took over ``SLOW``, before as long again: where votes
    arrive faster than a refit runs, they would otherwise run back to back and
    take a core from the server.
    """
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            update(_T)
            .where(_T.c.status == "running",
                   func.coalesce(_T.c.heartbeat_at, _T.c.started_at) < now - STALE)
            .values(status="failed", finished_at=now,
                    detail=f"abandoned: no heartbeat for {STALE} (its server stopped)")
        )  # fmt: skip
        last = conn.execute(
            select(_T.c.status, _T.c.started_at, _T.c.finished_at)
            .order_by(_T.c.id.desc()).limit(1)
        ).first()  # fmt: skip
    if last is not None and last.status == "done":
        started, ended = _utc(last.started_at), _utc(last.finished_at)
        took = ended - started
        if now - ended < max(min_gap, took if took > SLOW else timedelta(0)):
            return None  # a pause after each refit, however fast votes come
    who = f"running on {socket.gethostname()[:200]}, server process {os.getpid()}"
    try:
        with engine.begin() as conn:
            return conn.execute(CLAIM, {"now": now, "every": every, "who": who}).scalar()
    except IntegrityError:
        return None  # another process's refit is running


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def finish(conn_or_session: Session | Engine, refit_id: int, status: str, detail: str) -> bool:
    """Record how a running refit ended; False if it was no longer running."""
    stmt = (
        update(_T)
        .where(_T.c.id == refit_id, _T.c.status == "running")
        .values(status=status, finished_at=datetime.now(UTC), detail=detail[:DETAIL])
    )
    if isinstance(conn_or_session, Session):
        return conn_or_session.execute(stmt).rowcount == 1
    with conn_or_session.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def last_refits(session: Session, limit: int = 1) -> list[dict[str, object]]:
    """The latest refits, newest first, for curators (CLI and dashboard)."""
    rows = session.scalars(
        select(ConsensusRefit).order_by(ConsensusRefit.id.desc()).limit(limit)
    ).all()
    return [
        {"id": r.id, "status": r.status, "votes_seen": r.votes_seen,
         "started_at": r.started_at.isoformat(),
         "finished_at": r.finished_at.isoformat() if r.finished_at else None,
         "detail": r.detail}
        for r in rows
    ]  # fmt: skip


def child_env(cfg: Settings) -> dict[str, str]:
    """The server's environment plus its database and consensus settings: the web app
    may have been built from settings that are not in its environment (tests, embedders)."""
    env = dict(os.environ)
    env["SYNSET_DATABASE_URL"] = cfg.database_url
    env["SYNSET_DATA_DIR"] = str(cfg.data_dir)
    for name, value in cfg.model_dump().items():
        if name.startswith("consensus_"):
            env[f"SYNSET_{name.upper()}"] = str(value)
    return env


def child_command(refit_id: int) -> list[str]:
    return [sys.executable, "-m", "synset_builder.cli", "consensus", "--refit-id", str(refit_id)]


def _why(returncode: int, errors: Path) -> str:
    """One line: the child's last line of error output, or how it ended."""
    try:
        lines = errors.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    if returncode < 0:
        how = f"killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exit status {returncode}"
    return f"{how}: {lines[-1].strip()}" if lines else how


class AutoRefit:
    """One per web app (``app.state.refits``): counts votes, starts and watches refits."""

    def __init__(self, cfg: Settings, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        self.every = cfg.consensus.refit_votes
        self.min_gap = timedelta(seconds=cfg.consensus.refit_min_seconds)
        # Each process asks the database once per 1% of the refit interval of its own
        # votes: a refit starts at most that late per process, the submit path pays
        # nothing but an addition on all other submits.
        self.check_every = max(1, self.every // 100)
        self._lock = threading.Lock()
        self._counted = 0
        self._busy = threading.Lock()  # one check (and the refit it starts) per process
        self._thread: threading.Thread | None = None
        self.child: subprocess.Popen[bytes] | None = None

    def counted(self, session: Session, votes: int) -> None:
        """Called in each submit with the votes it recorded, before the commit."""
        if self.every == 0 or votes <= 0:
            return
        with self._lock:
            self._counted += votes
            if self._counted < self.check_every:
                return
            self._counted = 0
        event.listen(session, "after_commit", self._after_commit, once=True)

    def _after_commit(self, _session: Session) -> None:
        if self._busy.locked():
            return
        thread = threading.Thread(target=self.check, name="consensus-refit", daemon=True)
        self._thread = thread
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for this process's check and the refit it started (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def check(self) -> int | None:
        """Start and watch a refit if one is due; its id, or None if none was started."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            refit_id = claim(self.engine, self.every, self.min_gap)
            if refit_id is not None:
                self._run(refit_id)
            return refit_id
        except Exception:  # a background thread: log, never take the server down
            log.exception("consensus refit check failed")
            return None
        finally:
            self._busy.release()

    def _run(self, refit_id: int) -> None:
        with tempfile.TemporaryDirectory(prefix="synset-refit-") as tmp:
            errors = Path(tmp) / "stderr"
            try:
                with errors.open("wb") as err:
                    self.child = subprocess.Popen(
                        child_command(refit_id), env=child_env(self.cfg),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    )  # fmt: skip
            except OSError as exc:
                finish(self.engine, refit_id, "failed", f"could not start: {exc}")
                return
            returncode = self._wait(refit_id, self.child)
            if returncode != 0:
                finish(self.engine, refit_id, "failed", _why(returncode, errors))
            else:
                finish(self.engine, refit_id, "failed", "exited without recording its end")

    def _wait(self, refit_id: int, child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                return child.wait(timeout=HEARTBEAT_S)
            except subprocess.TimeoutExpired:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            update(_T).where(_T.c.id == refit_id, _T.c.status == "running")
                            .values(heartbeat_at=datetime.now(UTC))
                        )  # fmt: skip
                except Exception:  # busy database: the next beat will do
                    log.warning("consensus refit %s: heartbeat not recorded", refit_id)
