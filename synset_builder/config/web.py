"""The annotator web app's config (``settings.web``) and the crowd platforms' (``settings.crowd``).

``create_app`` hands these models to the routes as they are; they live beside
:class:`Settings` so that ``synset`` commands can read them without importing
the web app.
"""

from __future__ import annotations

from pydantic import Field

from synset_builder.config.flat import Section


class WebConfig(Section):
    """How ``synset serve`` listens, what a task page holds, and its abuse limits."""

    flat_prefix = "web_"

    host: str = Field("127.0.0.1", description="Address `synset serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `synset serve` listens on.")
    workers: int = Field(1, ge=1, description="Worker processes of `synset serve`.")
    # Each thread holds one database connection: requests beyond wait for a thread
    # (queued, costing nothing) rather than for the CPU.
    threads: int = Field(
        16, ge=1, le=256, description="Threads per worker, each with one database connection."
    )
    grid_size: int = Field(24, ge=1, le=200, description="Images on one task page.")
    gold_fraction: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of a task page that is gold (known answers that measure the annotator).",
    )
    lease_seconds: int = Field(
        600,
        ge=5,
        description="How long a served page holds its images for the annotator before others may "
        "get them.",
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted; larger ones answer 413."
    )
    login_attempts: int = Field(
        5,
        ge=1,
        description="Failed logins per account in the login window (an address gets four times as "
        "many); wrong study keys on /join count against an address the same way.",
    )
    login_window_seconds: int = Field(
        900, ge=1, description="The window over which failed logins are counted."
    )
    trusted_proxies: str = Field(
        "",
        description="Reverse proxies (comma-separated addresses) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; from anyone else those headers are ignored.",
    )
    secure_cookies: bool | None = Field(
        None,
        description="Secure on cookies: unset, when the request came over HTTPS (directly or as a "
        "trusted proxy says); true or false forces it.",
    )
    reports_per_hour: int = Field(
        20,
        ge=1,
        description="Reports ('report this image') one annotator may file per hour; each takes an "
        "image out of every queue until a curator looks.",
    )
    goal_recheck_seconds: float = Field(
        5.0,
        ge=0.0,
        description="How long a worker reuses a synset's 'below its goal' answer; 0 counts on "
        "every task fetch.",
    )
    undo_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="How long after a submit an annotator may undo that page; 0 never.",
    )

    @property
    def proxy_addresses(self) -> list[str]:
        """``trusted_proxies`` as a list (one string in the environment, as proxies write it)."""
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]


class CrowdConfig(Section):
    """Crowd platforms (Prolific, MTurk): ``/join?worker=ID&study=KEY``."""

    flat_prefix = "crowd_"

    study_key: str | None = Field(
        None, description="The study key crowd workers join with; /join works only when it is set."
    )
    pages: int = Field(
        10, ge=1, description="Pages a crowd worker submits before getting the completion code."
    )
    join_limit: int = Field(
        10, ge=1, description="New crowd accounts one client address may open per hour."
    )
