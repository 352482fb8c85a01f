"""The runner: what a program that expects a console gets here, figures, output, exits."""

from __future__ import annotations

import base64

import pytest

from app.errors import LimitExceeded, PolicyError
from app.sandbox.policy import PolicyLimits
from app.sandbox.runner import RunLimits, trace_program

W = "import torch\nw = torch.tensor([1.0], requires_grad=True)\n"


def test_pdb_and_breakpoint_go_on_with_a_note() -> None:
    graph = trace_program(
        W + "import pdb\npdb.set_trace()\nbreakpoint()\ny = (w * 3).sum()\ny.backward()\n"
    )
    assert graph.error is None and len(graph.backward) == 1
    assert sum("debugger" in note for note in graph.notes) == 1


def test_exit_ends_the_program_and_keeps_the_graph() -> None:
    graph = trace_program(
        W + "y = (w * 3).sum()\ny.backward()\nimport sys\nsys.exit(0)\nz = w * 5\n"
    )
    assert graph.error is None and len(graph.backward) == 1
    assert any("exit(0)" in note for note in graph.notes)
    assert not any(n.kind == "op" and n.line == 6 for n in graph.nodes)


def test_matplotlib_figures_come_back_as_png_and_show_does_nothing() -> None:
    graph = trace_program(
        "import matplotlib.pyplot as plt\nlosses = [3.0, 2.0, 1.5, 1.2]\n"
        "plt.plot(losses)\nplt.title('loss')\nplt.show()\nplt.figure()\nplt.plot([1, 2])\n"
    )
    assert graph.error is None and len(graph.figures) == 2
    png = base64.b64decode(graph.figures[0].png)
    assert png.startswith(b"\x89PNG") and graph.figures[0].width > 100
    assert not any("non-interactive" in note for note in graph.notes)


def test_print_and_stderr_are_captured() -> None:
    graph = trace_program("import sys\nprint('a', 1)\nprint('b', file=sys.stderr)\n")
    assert graph.stdout == "a 1\nb\n"


def test_input_has_a_clear_message_even_without_the_courtesy_check() -> None:
    graph = trace_program("n = input('n? ')\n")
    assert graph.error is not None and "no keyboard" in graph.error.message
    with pytest.raises(PolicyError, match="no keyboard"):
        trace_program("n = input('n? ')\n", checks=PolicyLimits())


def test_wall_clock_limit_names_its_setting() -> None:
    with pytest.raises(LimitExceeded) as info:
        trace_program("while True:\n    pass\n", limits=RunLimits(wall_seconds=0.5))
    assert info.value.limit == "wall_time" and "AE_WALL_SECONDS" in info.value.message


def test_tutorial_constructs_run_unchanged() -> None:
    code = (
        "from __future__ import annotations\nimport torch as t\nimport random\n"
        "from torch.autograd import Variable, Function, grad\n"
        "x = t.tensor([2.0, 3.0], requires_grad=True)\ny = (x * x).sum()\n"
        "saved = y.grad_fn.next_functions[0][0]._saved_self\n"
        "names = [n for n in dir(y) if not n.startswith('__')]\n"
        "kinds = (type(y).__name__, id(y) > 0, t.__version__ != '')\n"
        "total = sum(p.numel() for p in [x, saved])\n"
        "def gen():\n    yield 1\n"
        "try:\n    x.add_(1)\nexcept RuntimeError as e:\n    caught = 'leaf' in str(e)\n"
        "(g,) = grad(y, x)\nprint(g.tolist(), caught, kinds, total)\n"
    )
    graph = trace_program(code, checks=PolicyLimits())
    assert graph.error is None, graph.error
    assert graph.stdout.strip() == "[4.0, 6.0] True ('Tensor', True, True) 4"


def test_notebook_cells_run_with_magics_skipped_and_display() -> None:
    code = (
        "%matplotlib inline\nimport torch\nx = torch.ones(2, requires_grad=True)\n"
        "if True:\n    !pip install nothing\n    y = (x * 2).sum()\ndisplay(y)\ny.backward()\n"
    )
    graph = trace_program(code, checks=PolicyLimits())
    assert graph.error is None and "tensor(4." in graph.stdout
    assert any("%matplotlib inline" in note for note in graph.notes)
    (x,) = [n for n in graph.nodes if n.kind == "tensor" and n.name == "x"]
    assert graph.backward[0].grads[x.id].values == [2.0, 2.0]
