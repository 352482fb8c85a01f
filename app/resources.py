"""Where the static files and templates are: the repo's top level, or inside the installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is missing from this installation")


def static_dir() -> Path:
    """Folder of the ES modules and styles."""
    return _first_existing("static")


def templates_dir() -> Path:
    """Folder of the Jinja2 templates."""
    return _first_existing("templates")
