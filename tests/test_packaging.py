"""A wheel built from the repo ships the UI: static files, templates and the gallery."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_static_templates_and_examples(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("autograd_explorer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "app/static/js/app.js",
        "app/static/css/explorer.css",
        "app/static/vendor/codemirror/codemirror.js",
        "app/static/vendor/codemirror/LICENSE",
        "app/static/vendor/uplot/uPlot.esm.js",
        "app/templates/index.html",
        "app/templates/export.html",
        "app/static/vendor/swagger_ui/swagger-ui-bundle.js",
        "app/static/vendor/swagger_ui/LICENSE",
        "app/lessons/shared_weight.py",
        "app/sandbox/pool.py",
        "app/sandbox/worker_parent.py",
    ):
        assert expected in names, expected
