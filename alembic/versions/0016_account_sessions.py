"""accounts: a session version, a crowd browser secret, last login; throttle kinds

Revision ID: 0016_account_sessions
Revises: 0015_consensus_model
Create Date: 2026-12-07 02:00:00

The session cookie is signed but was only ``{uid}``: a copy stayed valid for 14
days after a logout, a password reset or a disable. ``annotator.session_version``
goes into the cookie and every change that should end sessions adds one to it.

A crowd worker arriving by ``/join`` was let in on their worker id alone.
``annotator.join_secret`` holds the SHA-256 of a secret the worker's first
browser got in a cookie; a later arrival with that id must bring it.

``annotator.last_login_at`` is what ``synset users list`` shows as last seen
(with the last vote). ``login_failure.kind`` lets the same throttle rows count
study-key failures and crowd joins per address, not only wrong passwords.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_account_sessions"
down_revision: str | None = "0015_consensus_model"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "annotator",
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("annotator", sa.Column("join_secret", sa.String(length=64), nullable=True))
    op.add_column(
        "annotator", sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "login_failure",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="login"),
    )
    op.create_index("ix_login_failure_kind", "login_failure", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_login_failure_kind", table_name="login_failure")
    op.drop_column("login_failure", "kind")
    for name in ("last_login_at", "join_secret", "session_version"):
        op.drop_column("annotator", name)
