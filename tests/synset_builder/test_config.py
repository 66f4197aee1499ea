"""Settings: one nested model per stage, documented, and the flat SYNSET_* names kept.

Each stage reads its section (``settings.clean``...), but users write the flat
names they always wrote, in the environment, in ``synset.toml`` and as keyword
overrides; every setting must say what it does in ``synset config``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synset_builder.config import Settings, load_settings
from synset_builder.config.flat import entries
from synset_builder.errors import ConfigError

ENTRIES = list(entries(Settings))


def test_every_setting_has_a_description_and_a_unique_flat_name() -> None:
    missing = [e.env for e in ENTRIES if not (e.info.description or "").strip()]
    assert missing == [], f"settings without a description: {missing}"
    names = [e.env for e in ENTRIES]
    assert len(names) == len(set(names))
    kept = {"SYNSET_CLEAN_MIN_SIDE", "SYNSET_WEB_GRID_SIZE", "SYNSET_CONSENSUS_REFIT_VOTES",
            "SYNSET_CROWD_JOIN_LIMIT", "SYNSET_FLICKR_KEY", "SYNSET_DATABASE_URL"}  # fmt: skip
    assert kept <= set(names)


def test_synset_config_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "synset_builder.cli", "config", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2]),
             "SYNSET_WEB_GRID_SIZE": "7", "SYNSET_FLICKR_KEY": "do-not-print"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = {row["env"]: row for row in json.loads(done.stdout)}
    assert set(listed) == {e.env for e in ENTRIES}
    assert all(row["description"] for row in listed.values())
    assert listed["SYNSET_WEB_GRID_SIZE"] | {"description": ""} == {
        "env": "SYNSET_WEB_GRID_SIZE", "default": "24", "value": "7", "description": ""
    }  # fmt: skip
    assert listed["SYNSET_FLICKR_KEY"]["value"] == "set"
    assert "do-not-print" not in done.stdout


def test_synset_config_changed_lists_only_what_differs(tmp_path: Path) -> None:
    def changed(env: dict[str, str]) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "synset_builder.cli", "config", "--changed"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2]), **env},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert changed({}).strip() == "Every setting has its default value."
    out = changed({"SYNSET_WEB_GRID_SIZE": "7"})
    assert out.startswith("SYNSET_WEB_GRID_SIZE = 24  (now 7)\n"), out
    assert "SYNSET_DATA_DIR" not in out


def test_flat_environment_names_reach_the_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNSET_CLEAN_MIN_SIDE", "50")
    monkeypatch.setenv("synset_web_grid_size", "9")  # names are case-insensitive
    monkeypatch.setenv("SYNSET_CONSENSUS_REFIT_VOTES", "5000")
    monkeypatch.setenv("SYNSET_CLEAN_PLACEHOLDERS", '["a.gif", "b.png"]')
    monkeypatch.setenv("SYNSET_DOWNLOAD_DEADLINE", "5")
    cfg = load_settings()
    assert (cfg.clean.min_side, cfg.web.grid_size, cfg.consensus.refit_votes) == (50, 9, 5000)
    assert cfg.clean.placeholders == (Path("a.gif"), Path("b.png"))
    assert cfg.crawl.download_deadline == 5.0
    assert load_settings(clean_min_side=60).clean.min_side == 60  # a keyword beats the env


def test_toml_takes_flat_keys_and_sections_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "synset.toml").write_text(
        "clean_min_side = 30\nweb_grid_size = 11\n[consensus]\nmax_votes = 7\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNSET_WEB_GRID_SIZE", "12")
    cfg = load_settings()
    assert (cfg.clean.min_side, cfg.web.grid_size, cfg.consensus.max_votes) == (30, 12, 7)


@pytest.mark.parametrize(
    ("env", "value"),
    [("SYNSET_CLEAN_MIN_SIDE", "-1"), ("SYNSET_WEB_GRID_SIZE", "lots"),
     ("SYNSET_CONSENSUS_THRESHOLD", "0.3"), ("SYNSET_DOWNLOAD_DEADLINE", "0")],
)  # fmt: skip
def test_an_invalid_setting_is_one_line_with_its_flat_name(
    env: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=rf"^Setting {env} is invalid: .+\.$"):
        load_settings()


def test_overrides_are_validated_and_unknown_names_refused(settings: Settings) -> None:
    changed = settings.with_overrides(web_grid_size=5, consensus_max_votes=3, data_dir=Path("x"))
    assert (changed.web.grid_size, changed.consensus.max_votes) == (5, 3)
    assert changed.data_dir == Path("x") and changed.web.threads == settings.web.threads
    with pytest.raises(ConfigError, match="SYNSET_WEB_GRID_SIZE is invalid"):
        settings.with_overrides(web_grid_size=0)
    with pytest.raises(TypeError, match="web_grid_sise"):
        settings.with_overrides(web_grid_sise=5)
    with pytest.raises(TypeError, match="clean_min_sid"):
        load_settings(clean_min_sid=5)


def test_sections_are_frozen_and_refuse_unknown_fields(settings: Settings) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        settings.clean.min_side = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        type(settings.web)(grid=3)  # type: ignore[call-arg]
