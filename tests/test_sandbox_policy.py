"""The static policy: what is allowed, what is refused, with line and column."""

from __future__ import annotations

import pytest

from app.errors import LimitExceeded, PolicyError
from app.examples import all_examples
from app.sandbox.policy import PolicyLimits, check


@pytest.mark.parametrize("example", all_examples(), ids=lambda e: e.id)
def test_every_gallery_program_passes(example) -> None:
    check(example.code)


ALLOWED = [
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport torch.optim as optim\nimport math\nimport numpy as np\n",
    "from torch import nn\nfrom torch import optim\nfrom torch.nn import functional as F\n",
    "import torch.nn\n",
    "class M(nn.Module):\n    def __init__(self):\n        super().__init__()\n",
    "class M(torch.nn.Module):\n    def __init__(self):\n        super(M, self).__init__()\n",
    "class R(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n        return x\n",
    "with torch.no_grad():\n    pass\nwith torch.enable_grad():\n    pass\n",
    "x = f'{1 + 2:.3f}'\ny = '{} and {:>4}'.format(1, 2)\n",
    "def f(input, a=1, b=(2, 3)):\n    return input\n",
    "ys = [i * i for i in range(3)]\nd = {i: i for i in range(3)}\n",
    "while False:\n    break\nassert True\n",
]


@pytest.mark.parametrize("code", ALLOWED)
def test_allowed(code: str) -> None:
    check(code)


REFUSED = [
    ("import os", 1, 1, "import of 'os'"),
    ("x = 1\nimport torch as t", 2, 1, "import of 'torch'"),
    ("from torch import utils", 1, 1, "torch.utils"),
    ("x = ().__class__", 1, 5, "'__class__'"),
    ("_secret = 1", 1, 1, "'_secret'"),
    ("y = eval('1')", 1, 5, "'eval'"),
    ("y = getattr(1, 'real')", 1, 5, "'getattr'"),
    ("y = type(1)", 1, 5, "'type'"),
    ("y = object", 1, 5, "'object'"),
    ("try:\n    pass\nexcept Exception:\n    pass", 1, 1, "try/except"),
    ("raise SystemExit", 1, 1, "raise"),
    ("g = (i for i in range(3))", 1, 5, "generator expressions"),
    ("def f():\n    yield 1", 2, 5, "generators"),
    ("@print\ndef f():\n    pass", 1, 2, "decorator"),
    ("def f(a=print(1)):\n    pass", 1, 9, "default argument"),
    ("f = lambda a=open('x'): a", 1, 14, "default argument"),
    ("s = '{0.real}'.format(1)", 1, 5, "format fields"),
    ("s = 'x'\nt = s.format(1)", 2, 5, "literal string"),
    ("class A:\n    pass", 1, 1, "subclass"),
    ("class A(dict):\n    pass", 1, 9, "subclass"),
    ("class A(nn.Module, metaclass=X):\n    pass", 1, 1, "metaclass"),
    ("with open('x') as f:\n    pass", 1, 6, "with is only"),
    ("F.relu = print", 1, 1, "read-only"),
    ("torch.Tensor.add = 1", 1, 1, "read-only"),
    ("del x", 1, 1, "del"),
    ("global x", 1, 1, "global"),
    ("x = g.gi_frame", 1, 5, "gi_frame"),
    ("ｅｘｅｃ('1')", 1, 1, "'exec'"),
    ("x = 1\ny = x.__ｃｌａｓｓ__", 2, 5, "'__class__'"),
    ("ｇｅｔａｔｔｒ(1, 'real')", 1, 1, "'getattr'"),
    ("y = b'bytes'", 1, 5, "bytes"),
    ("exit()", 1, 1, "'exit'"),
]


@pytest.mark.parametrize(("code", "line", "col", "fragment"), REFUSED)
def test_refused_with_position(code: str, line: int, col: int, fragment: str) -> None:
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
