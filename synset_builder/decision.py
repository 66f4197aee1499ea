"""The words a candidate's consensus row holds: one definition for every stage.

Consensus writes them, the web app serves by them, export keeps the accepted
ones and ``synset status`` counts them. Spelled out as bare strings they drift
(a typo is a silent empty query), so every Python site names a member here.

``Decision`` is a ``StrEnum`` whose member names equal their values on purpose:
a member *is* its word (``Decision.accepted == "accepted"``, ``f"{d}"`` gives the
word), SQLAlchemy hands a member to the driver as it is, and a driver that
dumps an ``Enum`` by its *name* (psycopg 3 does for a plain ``Enum``; for a
``str`` subclass it finds the ``str`` dumper first) writes the same plain word
as one that dumps the value. SQL text (triggers, migrations, ``'accepted'``
inside a statement string) keeps the literal word, compared as text.
"""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """A candidate's state in consensus (``Consensus.decision``).

    ``accepted`` and ``rejected`` are the crowd's (or a curator's) answer;
    ``undecided`` is closed without an answer (vote cap, nobody left to vote,
    hopeless, a tie), with the reason beside it; ``pending`` still wants votes.
    """

    accepted = "accepted"
    rejected = "rejected"
    undecided = "undecided"
    pending = "pending"


# Closed: no more votes are wanted (the web app stops serving the item).
DECIDED: tuple[Decision, ...] = (Decision.accepted, Decision.rejected, Decision.undecided)


def of_answer(answer: bool) -> Decision:
    """The decision a yes/no answer stands for: a vote, a verdict's top class or
    a curator's label all map the same way."""
    return Decision.accepted if answer else Decision.rejected
