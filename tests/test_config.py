"""Settings: the one source of every limit, each setting in the README with its default."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from app.config import Settings
from app.dot_run import DotLimits
from app.recorder import TraceOptions
from app.sandbox.policy import PolicyLimits
from app.tracing import options_from, settings_from_json

REPO = Path(__file__).resolve().parent.parent
# environment variables the code reads that are no operator's setting
INTERNAL = {"AE_JAIL_TASKS_MAX"}  # set by the jail for the children inside it


@pytest.fixture
def defaults(monkeypatch) -> Settings:
    """Settings with no AE_* variable set."""
    for name in [n for n in os.environ if n.startswith("AE_")]:
        monkeypatch.delenv(name)
    return Settings()


def test_limit_objects_default_to_the_settings_defaults(defaults: Settings) -> None:
    # code that runs without a server (the CLI, a notebook) falls back on the same bounds
    assert DotLimits() == defaults.dot_limits()
    assert PolicyLimits() == defaults.policy_limits()
    assert TraceOptions() == options_from(defaults)
    assert defaults.dot_limits().seconds == defaults.layout_seconds == 20.0


def test_settings_build_every_limit_object() -> None:
    settings = Settings(
        layout_seconds=3,
        max_code_lines=40,
        wall_seconds=7,
        cpu_seconds=9,
        memory_margin_mb=100,
        inline_limit=5,
    )
    assert settings.dot_limits().seconds == 3
    assert settings.policy_limits().max_lines == 40
    assert settings.run_limits().wall_seconds == 7
    child = settings.child_limits()
    assert child.cpu_seconds == 9 and child.memory_margin_bytes == 100 * 2**20
    assert options_from(settings).inline_limit == 5


def test_pool_settings_carry_no_secret() -> None:
    sent = Settings(session_key="s3cret", wall_seconds=11).pool_settings()
    assert "s3cret" not in json.dumps(sent.to_json())
    assert settings_from_json(sent.recording).wall_seconds == 11


def names_read_in_code() -> set[str]:
    found: set[str] = set()
    for path in [*REPO.joinpath("app").rglob("*.py"), *REPO.joinpath("scripts").iterdir()]:
        if path.is_file():
            found |= set(re.findall(r"\bAE_[A-Z][A-Z0-9_]*", path.read_text(errors="replace")))
    found |= set(re.findall(r"\bAE_[A-Z][A-Z0-9_]*", REPO.joinpath("Dockerfile").read_text()))
    return found - INTERNAL


def setting_names() -> dict[str, str]:
    return {f"AE_{name.upper()}": name for name in Settings.model_fields}


def test_every_variable_the_code_reads_is_a_setting() -> None:
    assert names_read_in_code() <= set(setting_names())


def readme_default(value: object) -> set[str]:
    """How the README may write a default: true/false, a number, empty or none."""
    if isinstance(value, bool):
        return {"true" if value else "false"}
    if isinstance(value, float):
        return {f"{value:g}"}
    if value in ("", []):
        return {"empty", "none"}
    return {str(value)}


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    readme = REPO.joinpath("README.md").read_text()
    for variable, name in setting_names().items():
        found = re.search(rf"`{variable}` \(([^,;:)]*)", readme)
        assert found, f"{variable} is not in the README's settings"
        field = Settings.model_fields[name]
        if name == "workers":
            continue  # computed from the cores at start: the README says how
        default = field.default_factory() if field.default_factory else field.default
        written = found.group(1).split()[0]
        assert written in readme_default(default), (variable, found.group(0))


def test_no_setting_is_left_unread() -> None:
    code = "\n".join(
        p.read_text() for p in REPO.joinpath("app").rglob("*.py") if p.name != "config.py"
    )
    config = REPO.joinpath("app", "config.py").read_text()
    for name in Settings.model_fields:
        read = re.search(rf"\b{name}\b", code) or config.count(f"self.{name}")
        assert read, f"the setting {name} is never read"
