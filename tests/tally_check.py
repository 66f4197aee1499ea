"""The check every counter test makes: the kept counters equal an exact recount."""

from __future__ import annotations

from sqlalchemy.orm import Session

from synset_builder import recount, status, tally


def exact_equals_kept(session: Session) -> dict[int, tally.Tally]:
    """Assert what pages read (tally, funnel) equals the definitions; return the tallies."""
    session.flush()
    kept = tally.read(session)
    exact = recount.exact_tallies(session)

    def plain(tallies: dict[int, tally.Tally]) -> dict[int, tuple]:
        return {
            sid: (t.counts, t.agreed_items, round(t.agreement_sum, 9))
            for sid, t in tallies.items()
            if any(t.counts.values()) or t.agreed_items
        }

    assert plain(kept) == plain(exact)
    voters = {aid: f for aid, f in tally.read_annotators(session).items() if any(f.values())}
    assert voters == recount.exact_voters(session)
    as_json = [r.as_json() for r in status.funnel(session)]
    assert as_json == [r.as_json() for r in status.funnel(session, exact=True)]
    return kept
