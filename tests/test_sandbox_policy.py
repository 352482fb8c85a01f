"""The static policy: what is allowed, what is refused, with line and column."""

from __future__ import annotations

import ast

import pytest

from app.errors import LimitExceeded, PolicyError
from app.lessons import all_lessons
from app.sandbox.policy import PolicyLimits, check


@pytest.mark.parametrize("example", all_lessons(), ids=lambda e: e.id)
def test_every_gallery_program_passes(example) -> None:
    tree = check(example.code)
    assert ast.unparse(tree) == ast.unparse(ast.parse(example.code))  # the program it read


ALLOWED = [
    # everything tutorials use runs unchanged: the check is a courtesy, not the wall
    "import torch as t\nimport random\nimport pdb\nimport torch.utils.data\n",
    "from __future__ import annotations\nfrom torch.autograd import Variable, Function, grad\n",
    "from torch.autograd import gradcheck, functional\nimport numpy as np\nimport math\n",
    "y = x.grad_fn._saved_self\nv = torch.__version__\n",
    "def backward(ctx, _grad_out_exp):\n    return _grad_out_exp\n",
    "Function = torch.autograd.Function\nclass Double(Function):\n    pass\n",
    "n = sum(p.numel() for p in ps)\ndef gen():\n    yield 1\n",
    "print(dir(x), type(x), id(x), isinstance(x, int), hasattr(x, 'a'), getattr(x, 'a', 1))\n",
    "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    print(e)\n",
    "import os\nprint(os.getcwd())\nwith open('data.txt') as f:\n    pass\n",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n",
    "pdb.set_trace()\nbreakpoint()\n",
]


@pytest.mark.parametrize("code", ALLOWED)
def test_allowed(code: str) -> None:
    tree = check(code)
    assert ast.unparse(tree) == ast.unparse(ast.parse(code))


REFUSED = [
    ("import subprocess", 1, 1, "other processes"),
    ("x = 1\nfrom multiprocessing import Pool", 2, 1, "other processes"),
    ("import socket", 1, 1, "no network"),
    ("import urllib.request", 1, 1, "no network"),
    ("from urllib import request", 1, 1, "no network"),
    ("import requests", 1, 1, "no network"),
    ("import tkinter", 1, 1, "no display"),
    ("import os\nos.system('ls')", 2, 1, "other processes"),
    ("import os as o\no.execv('/bin/sh', [])", 2, 1, "other processes"),
    ("import torch\nx = 1\ntorch.save(x, 'f.pt')", 3, 1, "cannot write files"),
    ("import torch as t\nt.save(1, 'f.pt')", 2, 1, "cannot write files"),
    ("import numpy as np\nnp.save('a', 1)", 2, 1, "cannot write files"),
    ("f = open('out.txt', 'w')", 1, 5, "cannot write files"),
    ("f = open('out.txt', mode='a')", 1, 5, "cannot write files"),
    ("import torch\nm = torch.hub.load('a/b', 'c')", 2, 5, "no network"),
    ("n = input('n? ')", 1, 5, "no keyboard"),
]


@pytest.mark.parametrize(("code", "line", "col", "fragment"), REFUSED)
def test_refused_with_position_and_what_to_do(
    code: str, line: int, col: int, fragment: str
) -> None:
    with pytest.raises(PolicyError) as info:
        check(code)
    assert fragment in info.value.message
    assert (info.value.line, info.value.col) == (line, col)


def test_size_limits() -> None:
    limits = PolicyLimits(max_bytes=100, max_lines=5, max_nodes=50, max_nesting=10)
    with pytest.raises(LimitExceeded) as info:
        check("x = 1\n" * 30, limits)
    assert info.value.limit == "code_bytes"
    with pytest.raises(LimitExceeded) as info:
        check("x=1\n" * 8, limits)
    assert info.value.limit == "code_lines"
    with pytest.raises(LimitExceeded) as info:
        check("x = " + "+".join(["1"] * 40), limits)
    assert info.value.limit in ("ast_nodes", "nesting")
    with pytest.raises(LimitExceeded) as info:
        check(
            "x = " + "(" * 50 + "1" + ")" * 50 + "\ny = [[[[[[[[[[[[1]]]]]]]]]]]]",
            PolicyLimits(max_nesting=10),
        )
    assert info.value.limit == "nesting"


def test_pathological_nesting_is_a_limit_not_a_crash() -> None:
    with pytest.raises((LimitExceeded, SyntaxError)):
        check("x = " + "-" * 100_000 + "1", PolicyLimits(max_bytes=200_000))


def test_a_long_tutorial_passes_the_default_limits() -> None:
    from app.config import Settings

    cell = (
        "# cell {i}: a computation\n"
        "loss_{i} = (weights * inputs_{i}).sum() / n\n"
        "print('loss', float(loss_{i}))\n"
    )
    code = "".join(cell.format(i=i) for i in range(160))  # 480 lines
    assert code.count("\n") == 480 and 14_000 < len(code.encode()) <= 20_000
    check(code, Settings().policy_limits())  # no LimitExceeded: bytes bound the size, not lines
    with pytest.raises(LimitExceeded) as info:
        check(code + "#" * 6000, Settings().policy_limits())
    assert info.value.limit == "code_bytes"
