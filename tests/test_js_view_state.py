"""static/js/view-state.js: a patch replaces declared fields in a new frozen view and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parent.parent / "static" / "js" / "view-state.js"

# Imported from a data: URL so that node reads the file as the ES module the browser loads.
SCRIPT = """
const source = require("fs").readFileSync(process.argv[1], "utf8");
import("data:text/javascript," + encodeURIComponent(source)).then(({ createView, patchView, VIEW_FIELDS }) => {
  const before = createView({ lang: "zh", expanded: ["fc1"] });
  const after = patchView(before, { selected: "n3", expanded: [] });
  let mistyped = null;
  try { patchView(after, { selection: "n3" }); } catch (error) { mistyped = error.message; }
  try { after.selected = "n4"; } catch { /* strict code throws; this script ignores the write */ }
  console.log(JSON.stringify({
    fields: VIEW_FIELDS,
    before: { lang: before.lang, expanded: before.expanded, selected: before.selected },
    after: { lang: after.lang, expanded: after.expanded, selected: after.selected, pass: after.pass },
    frozen: Object.isFrozen(after),
    written: after.selected,
    mistyped,
  }));
});
"""


@pytest.fixture(scope="module")
def outcome() -> dict:
    """What the module did with a view, a patch and a mistyped patch, as node ran it."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed here")
    done = subprocess.run(
        ["node", "-e", SCRIPT, str(MODULE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_patch_replaces_its_fields_and_keeps_the_others(outcome: dict) -> None:
    assert outcome["after"] == {"lang": "zh", "expanded": [], "selected": "n3", "pass": 0}


def test_the_view_patched_is_left_as_it_was(outcome: dict) -> None:
    assert outcome["before"] == {"lang": "zh", "expanded": ["fc1"], "selected": None}


def test_a_view_cannot_be_written_to(outcome: dict) -> None:
    assert outcome["frozen"] is True
    assert outcome["written"] == "n3"


def test_a_field_nobody_declared_is_refused(outcome: dict) -> None:
    assert outcome["mistyped"] == 'no view field "selection"'
    assert "selected" in outcome["fields"] and "selection" not in outcome["fields"]
