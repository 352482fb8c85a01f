"""Every note the recorder writes is a message key the page translates, in English and Chinese,
with the same English words on both sides."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.recorder import TraceOptions
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


def _recorder_keys() -> set[str]:
    """The keys of every note(...) / note_once(...) call in app/recorder."""
    keys = set()
    for path in (ROOT / "app" / "recorder").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"note", "note_once"}
            ):
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    keys.add(first.value)
                elif isinstance(first, ast.IfExp):  # "warning" if line is not None else ...
                    keys |= {first.body.value, first.orelse.value}  # type: ignore[attr-defined]
    return keys


def test_every_recorder_note_has_both_languages_on_the_page() -> None:
    english, chinese = _page_texts()
    keys = _recorder_keys()
    assert {"nodeLimit", "passesSummarised", "implicitBackward", "warning"} <= keys
    assert not keys - set(english), keys - set(english)
    assert not keys - set(chinese), keys - set(chinese)


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
