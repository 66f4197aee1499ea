"""Curator review and the blind precision audit (issue 22).

* :mod:`~synset_builder.review.decisions`: a curator's judgement of one item (an
  expert decision) and the one rule for the decision in force: the newest
  judgement wins over the crowd's consensus, a withdrawn one hands the item back.
  Export, ``synset status`` and the dashboard read decisions through it.
* :mod:`~synset_builder.review.audit`: ``synset audit start`` draws a uniform
  sample of a synset's accepted items; judging them measures precision with a
  Wilson interval, per synset and pooled.
* :mod:`~synset_builder.review.browse`: the review pages' queries, paged by key
  so a synset of 100,000 candidates costs what one of 100 does.
"""
