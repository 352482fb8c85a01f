"""The Dockerfile read against the README and the code: same command, port, settings, checks."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from app.cli import build_parser
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def one(keyword: str) -> str:
    (value,) = [rest for key, rest in instructions() if key == keyword]
    return value


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def env_of_image() -> dict[str, str]:
    env: dict[str, str] = {}
    for key, rest in instructions():
        if key == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_cmd_is_the_readme_serve_command_and_the_cli_accepts_it() -> None:
    command = json.loads(one("CMD"))
    assert command[:2] == ["autograd-explorer", "serve"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'autograd-explorer = "app.cli:run"' in pyproject
    args = build_parser().parse_args(command[1:])
    assert args.host == "0.0.0.0" and args.command == "serve"
    assert f"`autograd-explorer serve --host 0.0.0.0 --port {args.port}`" in readme()
    assert "`autograd-explorer serve [--host 127.0.0.1] [--port 8000]`" in readme()


def test_one_port_everywhere() -> None:
    port = build_parser().parse_args(json.loads(one("CMD"))[1:]).port
    assert one("EXPOSE") == str(port)
    assert f"127.0.0.1:{port}/api/v1/health" in one("HEALTHCHECK")
    assert re.search(rf"docker run -p \d+:{port} ", readme())


def test_healthcheck_calls_a_real_route(inprocess_client) -> None:
    url = re.search(r"http://127\.0\.0\.1:\d+(/[\w/]+)", one("HEALTHCHECK")).group(1)
    answer = inprocess_client.get(url)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert "healthcheck on `GET /api/v1/health`" in readme()


def test_settings_in_the_image_are_real_and_the_readme_defaults() -> None:
    env = env_of_image()
    limits = {k: v for k, v in env.items() if k.startswith("AE_")}
    assert {"AE_WALL_SECONDS", "AE_MEMORY_MARGIN_MB", "AE_CORS_ORIGINS"} <= set(limits)
    fields = Settings.model_fields
    parsed = Settings()  # the defaults
    with pytest.MonkeyPatch.context() as patch:
        for name, value in limits.items():
            patch.setenv(name, value)
        from_image = Settings()
    for name, value in limits.items():
        field = name.removeprefix("AE_").lower()
        assert field in fields, name
        assert getattr(from_image, field) == getattr(parsed, field), name  # as documented
        assert f"`{name}`" in readme(), f"{name} is not in the README's settings"
        if value:
            assert re.search(rf"`{name}` \({re.escape(value)}[ ,)]", readme()), (name, value)


def test_packages_torch_and_user() -> None:
    run = " ".join(rest for key, rest in instructions() if key == "RUN")
    assert "graphviz" in run and "bubblewrap" in run
    args = dict(rest.split("=", 1) for key, rest in instructions() if key == "ARG" and "=" in rest)
    assert args["BASE"].startswith("python:3.") and args["BASE"].endswith("-slim")
    assert args["TORCH_INDEX"].endswith("/whl/cpu")
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert f'"torch=={args["TORCH_VERSION"]}"' in setup  # the same torch as the README's setup
    assert "--build-arg BASE=" in readme() and "--build-arg TORCH_INDEX=" in readme()
    keys = [key for key, _ in instructions()]
    assert one("USER") not in ("root", "0")
    assert keys.index("USER") < keys.index("CMD")
    for key, rest in instructions():
        if key == "COPY":
            *sources, _ = rest.split()
            assert all((ROOT / source).exists() for source in sources), rest


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert ".venv" in ignored and ".git" in ignored
    copied = {p for key, rest in instructions() if key == "COPY" for p in rest.split()[:-1]}
    assert copied and not (copied & ignored)


def test_the_readme_says_how_the_jail_works_in_a_container() -> None:
    text = readme()
    for flag in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"):
        assert f"--security-opt {flag}" in text
    assert "`jail: true`" in text and "--allow-unjailed" in text
    assert "--allow-unjailed" not in one("CMD")  # the image never runs programs unjailed
    assert "allow_unjailed" in vars(build_parser().parse_args(["serve"]))
