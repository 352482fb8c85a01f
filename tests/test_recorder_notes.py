"""Every note the recorder writes is a message key the page translates, in English and Chinese,
with the same English words on both sides."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.dot_run import INSTALL_HINT
from app.notebook import FREED_GRAPH_NOTE
from app.recorder import TraceOptions
from app.sandbox.runner import trace_program
from app.schemas import Graph
from app.tracing import trace_code
from tests.page_strings import page_strings

ROOT = Path(__file__).resolve().parent.parent


def _page_texts() -> tuple[dict[str, str], dict[str, str]]:
    """(English, Chinese) note texts of static/js/i18n.js, by key."""
    strings = page_strings()
    return tuple(  # type: ignore[return-value]
        {k[len("note.") :]: v for k, v in strings[lang].items() if k.startswith("note.")}
        for lang in ("en", "zh")
    )


NOTE_CALLS = {"note", "note_once", "add_note", "_note"}


def _key_of(call: ast.Call) -> set[str]:
    """The message keys a note call or NoteMessage(...) of app/ can write (none when computed)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    if name == "NoteMessage":
        return {
            k.value.value
            for k in call.keywords
            if k.arg == "key" and isinstance(k.value, ast.Constant)
        }
    if name not in NOTE_CALLS:
        return set()
    for arg in call.args:  # the key is the first string: after the graph, before the text
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return {arg.value}
        if isinstance(arg, ast.IfExp):  # "warning" if line is not None else ...
            return {arg.body.value, arg.orelse.value}  # type: ignore[attr-defined]
    return set()


def _note_keys(folder: Path) -> set[str]:
    """The keys of every note written under folder: note(...), note_once(...), add_note(...)."""
    keys: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                keys |= _key_of(node)
    return keys


def test_every_recorder_note_has_both_languages_on_the_page() -> None:
    english, chinese = _page_texts()
    keys = _note_keys(ROOT / "app" / "recorder")
    assert {"nodeLimit", "passesSummarised", "implicitBackward", "warning"} <= keys
    assert not keys - set(english), keys - set(english)
    assert not keys - set(chinese), keys - set(chinese)


def test_every_note_of_the_app_has_both_languages_on_the_page() -> None:
    english, chinese = _page_texts()
    keys = _note_keys(ROOT / "app")
    new_call_sites = {
        "debuggerSkipped",
        "programExit",
        "magicsSkipped",
        "figureFailed",
        "responseValuesSummarised",
        "rulesCapped",
        "noGraphviz",
        "noLayout",
        "layoutBusy",
        "freedGraph",
    }
    assert new_call_sites <= keys, new_call_sites - keys
    assert not keys - set(english), keys - set(english)
    assert not keys - set(chinese), keys - set(chinese)


def test_no_module_writes_english_only_notes() -> None:
    """Graph.notes is the English mirror of Graph.messages: only app/graph_notes.py writes it."""
    writers = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*.py")
        if re.search(r"\.notes\.(append|extend|insert)\(", path.read_text())
    }
    assert writers == {"app/graph_notes.py"}


def test_constant_notes_are_the_pages_english() -> None:
    english, _ = _page_texts()
    assert INSTALL_HINT == english["noGraphviz"]
    assert FREED_GRAPH_NOTE == english["freedGraph"]


PROGRAMS = {
    "implicitBackward": "import torch\nw = torch.ones(2, requires_grad=True)\ny = (w * 3).sum()\n",
    "warning": (
        "import torch, warnings\nw = torch.ones(2, requires_grad=True)\n"
        "warnings.warn('careful')\n(w * 2).sum().backward()\n"
    ),
    "passesSummarised": (
        "import torch\nw = torch.ones(2, requires_grad=True)\ni = 0\n"
        "while i < 5:\n    (w * 2).sum().backward()\n    i += 1\nv = w * 3\n"
    ),
    "nodeLimit": (
        "import torch\nw = torch.ones(2, requires_grad=True)\ny = w\n"
        "for i in range(40):\n    y = y * 2\ny.sum().backward()\n"
    ),
    "failedPass": (
        "import torch\nw = torch.ones(2, requires_grad=True)\ny = (w * w).sum()\n"
        "y.backward()\ny.backward()\n"
    ),
}


def _filled(template: str, params: dict[str, object]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), "")), template)


@pytest.mark.parametrize("key", PROGRAMS)
def test_a_notes_english_text_is_the_pages_template_filled_in(key: str) -> None:
    graph: Graph = trace_code(PROGRAMS[key], options=TraceOptions(max_nodes=40, max_passes=2))
    english, _ = _page_texts()
    (message,) = [m for m in graph.messages if m.key == key]
    assert message.text in graph.notes
    template = english[key]
    expected = _filled(template, message.params)
    if template.endswith(":"):  # the page adds the message itself after the template
        assert message.text == f"{expected} {message.params['message']}"
    else:
        assert message.text == expected


RUNNER_PROGRAMS = {
    "debuggerSkipped": "import pdb\npdb.set_trace()\nbreakpoint()\n",
    "programExit": "import sys\nsys.exit(3)\n",
    "magicsSkipped": "%matplotlib inline\n!pip install nothing\nx = 1\n",
}


@pytest.mark.parametrize("key", RUNNER_PROGRAMS)
def test_a_runner_notes_english_text_is_the_pages_template_filled_in(key: str) -> None:
    graph = trace_program(RUNNER_PROGRAMS[key])
    english, _ = _page_texts()
    (message,) = [m for m in graph.messages if m.key == key]
    assert graph.notes == [m.text for m in graph.messages]
    assert message.text == _filled(english[key], message.params)
