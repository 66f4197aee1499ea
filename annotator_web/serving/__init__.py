"""The request path: one task fetch (``fetch``) and one submit (``submit``, ``undo``).

``statements`` holds their SQL, built once per backend in ``create_app``
(``fetch_sql``, ``submit_sql``, and ``consensus.live_sql`` for the consensus update
a submit causes); ``page`` the page's types and what a fetch reads of the caller;
``goals`` how long a synset's "below its goal" answer is reused.
"""
