"""Tutorial-style programs run unchanged: API and CLI gradients equal plain torch's.

Each program under tests/tutorials/ runs four ways: in plain Python with real torch (a fresh
subprocess, tests/tutorial_reference.py), through POST /api/v1/trace, through
`autograd-explorer trace FILE --format json` and through the same command with `--sandbox` (fresh
subprocesses). After the program's last backward pass every named leaf that requires grad must
carry the same .grad in all of them, when the program ends with torch.autograd.grad() its
returned values must agree too, and so must the last line the program printed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from app.schemas import Graph, TensorData, TensorNode

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = Path(__file__).resolve().parent / "tutorials"
PROGRAMS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in PROGRAMS]

# Generous limits: these tests compare gradients, they must not depend on machine speed.
GENEROUS_SECONDS = 300
RTOL, ATOL = 1e-4, 1e-6

# Each construct the explorer once refused, with patterns that must all match one program.
CONSTRUCTS: dict[str, list[str]] = {
    "from torch.autograd import Variable": [r"^from torch\.autograd import .*\bVariable\b"],
    "from torch.autograd import Function": [r"^from torch\.autograd import .*\bFunction\b"],
    "from torch.autograd import grad": [r"^from torch\.autograd import .*\bgrad\b"],
    "from torch.autograd import gradcheck": [r"^from torch\.autograd import .*\bgradcheck\b"],
    "from torch.autograd import functional": [r"^from torch\.autograd import .*\bfunctional\b"],
    "import torch as t": [r"^import torch as t$"],
    "import random": [r"^import random$", r"\brandom\.\w+\("],
    "pdb.set_trace()": [r"^import pdb$", r"^pdb\.set_trace\(\)"],
    "from __future__ import annotations": [r"^from __future__ import annotations$"],
    "torch.utils.data": [r"^import torch\.utils\.data$", r"TensorDataset\(", r"DataLoader\("],
    "torch.FloatTensor / LongTensor": [r"torch\.FloatTensor\(", r"torch\.LongTensor\("],
    "torch.set_default_device('cpu')": [r"torch\.set_default_device\([\"']cpu[\"']\)"],
    "gradcheck / gradgradcheck in double": [
        r"gradcheck\(",
        r"gradgradcheck\(",
        r"torch\.double",
    ],
    "torch.Generator": [r"torch\.Generator\(\)"],
    "torch.autograd.functional.jacobian / hessian": [
        r"torch\.autograd\.functional\.jacobian\(",
        r"torch\.autograd\.functional\.hessian\(",
    ],
    "torch.set_printoptions": [r"torch\.set_printoptions\("],
    "a hook handle's .remove()": [r"(\w+) = \w+\.register_hook\(", r"^\w+\.remove\(\)"],
    "torch.__version__": [r"torch\.__version__"],
    "y.grad_fn._saved_self": [r"\.grad_fn\._saved_self\b"],
    "a backward argument named _grad_out_exp": [r"def backward\(ctx, .*\b_grad_out_exp\b"],
    "Function = torch.autograd.Function; class Double(Function)": [
        r"^Function = torch\.autograd\.Function$",
        r"^class Double\(Function\):",
    ],
    "generator expression sum(p.numel() for p in ...)": [r"sum\(p\.numel\(\) for p in "],
    "yield": [r"^\s+yield\b"],
    "dir, type, id": [r"\bdir\(", r"\btype\(", r"\bid\("],
    "a tutorial-style training loop": [
        r"^for epoch in range\(",
        r"\.zero_grad\(\)",
        r"\.backward\(\)",
        r"\.step\(\)",
    ],
    "x = torch.Tensor([2.0]) as the first tensor": [
        r"\A(?:#.*\n|\s*\n|import .*\n)*x = torch\.Tensor\(\[2\.0\]\)"
    ],
    "matplotlib loss curve and plt.show()": [
        r"^import matplotlib\.pyplot as plt$",
        r"plt\.plot\(losses\)",
        r"^plt\.show\(\)$",
    ],
    "for param in model.parameters()": [r"for param in model\.parameters\(\):"],
    "params[i]": [r"params\[i\]"],
    "for name, layer in m.named_modules()": [r"for name, layer in \w+\.named_modules\(\):"],
    "try / except": [r"^\s*try:$", r"^\s*except \w+"],
    "classes": [r"^class \w+"],
    "isinstance, hasattr, getattr": [r"\bisinstance\(", r"\bhasattr\(", r"\bgetattr\("],
    "a long training loop with code after it": [
        r"^for \w+ in range\((1\d\d|[2-9]\d\d)\):",
        r"\.backward\(\)\n(?:.*\n)*^\S.*\.backward\(\)",
    ],
    "*params unpacking with an optimizer": [
        r"^\s+\w+, \w+, \w+ = params$|\*params\)",
        r"torch\.optim\.\w+\(\[?params",
    ],
    "torch.func grad / vmap / jacrev": [r"from torch\.func import", r"vmap\(grad\(", r"jacrev\("],
    "forward-mode AD": [r"torch\.autograd\.forward_ad", r"make_dual\(", r"unpack_dual\("],
    "gradcheck of a function called hundreds of times": [r"gradcheck\(layer, \(A, B\)"],
    "a tensor hook after a training loop": [r"^for epoch in range\(", r"^\w+\.register_hook\("],
    "module hooks": [r"register_forward_hook\(", r"register_full_backward_hook\("],
    "torch.utils.checkpoint": [r"from torch\.utils\.checkpoint import checkpoint\b"],
    "checkpoint_sequential": [r"checkpoint_sequential\("],
    "complex numbers": [r"\d\.\d+j", r"\.conj\(\)", r"torch\.angle\("],
    "torch.fft": [r"torch\.fft\.rfft\(", r"torch\.fft\.irfft\("],
    "a sparse tensor": [r"torch\.sparse_coo_tensor\(", r"torch\.sparse\.mm\("],
    "an optimizer closure (L-BFGS)": [r"torch\.optim\.LBFGS\(", r"\.step\(closure\)"],
    "a while loop with break": [r"^while .*:$", r"^\s+break$"],
}


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AE_WALL_SECONDS=str(GENEROUS_SECONDS),
        AE_CPU_SECONDS=str(GENEROUS_SECONDS),
        OMP_NUM_THREADS="1",  # several children share the machine; one thread each
        MPLBACKEND="Agg",
        PYTHONPATH=str(ROOT),  # the command imports this checkout, not an installed copy
    )
    return env


@functools.cache
def plain_reference(path: Path) -> dict[str, Any]:
    """The program run by plain Python in a fresh process: leaf gradients and gradient calls."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.json"
        proc = subprocess.run(
            [sys.executable, "-m", "tests.tutorial_reference", str(path), str(out)],
            cwd=ROOT,
            env=_child_env(),
            input="c\n" * 20,  # pdb.set_trace(): continue, as a person at the prompt would
            capture_output=True,
            text=True,
            timeout=GENEROUS_SECONDS,
        )
        assert proc.returncode == 0, f"plain run of {path.name} failed:\n{proc.stderr[-3000:]}"
        reference = json.loads(out.read_text(encoding="utf-8"))
        # the prompt pdb.set_trace() prints is the debugger's, not the program's
        reference["last_line"] = last_printed_line(
            re.sub(r"^(\(Pdb\) )+", "", proc.stdout, flags=re.M)
        )
        return reference


def last_printed_line(text: str) -> str | None:
    """The last non-blank line a program printed; None when it printed nothing."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].rstrip() if lines else None


def _tensor_of(data: TensorData) -> torch.Tensor:
    def number(v: Any) -> Any:
        if isinstance(v, list):
            return [number(x) for x in v]
        return float(v)  # "NaN" / "Infinity" travel as strings

    assert data.values is not None
    return torch.tensor(number(data.values), dtype=torch.float64)


def _assert_close(got: TensorData, expected: Any, what: str) -> None:
    want = torch.tensor(expected, dtype=torch.float64)
    assert got.shape == list(want.shape), f"{what}: shape {got.shape} != {list(want.shape)}"
    if got.values is not None:
        have = _tensor_of(got)
        assert torch.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True), (
            f"{what}: {have.tolist()} != {want.tolist()}"
        )
        return
    assert got.stats is not None, f"{what}: neither values nor statistics"
    std, mean = torch.std_mean(want, correction=0)
    for field, value in [
        ("min", want.min()),
        ("max", want.max()),
        ("mean", mean),
        ("std", std),
    ]:
        assert getattr(got.stats, field) == pytest.approx(float(value), rel=1e-3, abs=1e-6), (
            f"{what}: {field} {getattr(got.stats, field)} != {float(value)}"
        )


def assert_matches_plain(graph: Graph, reference: dict[str, Any], via: str) -> None:
    """The graph's leaf .grad values (and last autograd.grad results) equal plain torch's."""
    assert graph.error is None, f"{via}: the program raised {graph.error}"
    leaves: dict[str, TensorNode] = {}
    for node in graph.nodes:
        if isinstance(node, TensorNode) and node.is_leaf and node.name:
            leaves[node.name] = node  # the last node under a name is the latest binding
    compared = 0
    for name, expected in reference["leaves"].items():
        node = leaves.get(name)
        if expected["grad"] is None:
            assert node is None or node.grad is None, f"{via}: {name}.grad should be None"
            continue
        assert node is not None, f"{via}: no leaf named {name!r}; named leaves: {sorted(leaves)}"
        assert node.grad is not None, f"{via}: {name}.grad is None, torch has {expected['grad']}"
        _assert_close(node.grad, expected["grad"], f"{via}: {name}.grad")
        compared += 1
    events = reference["events"]
    if events and events[-1]["kind"] == "grad":
        assert graph.backward, f"{via}: no backward pass recorded"
        last = graph.backward[-1]
        assert last.kind == "grad", f"{via}: the last pass is {last.kind}, not autograd.grad"
        got = [last.results.get(i) for i in last.inputs]
        assert len(got) == len(events[-1]["results"]), f"{via}: {len(got)} results"
        for index, (have, want) in enumerate(zip(got, events[-1]["results"], strict=True)):
            if want is None:
                continue
            assert have is not None, f"{via}: autograd.grad result {index} missing"
            _assert_close(have, want, f"{via}: autograd.grad result {index}")
            compared += 1
    assert compared, f"{via}: nothing to compare"
    if reference.get("last_line") is not None and " at 0x" not in reference["last_line"]:
        assert last_printed_line(graph.stdout) == reference["last_line"], f"{via}: last line"


@pytest.fixture(scope="module")
def tutorial_client(client_with):
    """The real app and worker pool, with limits generous enough for the longest program."""
    return client_with(
        wall_seconds=GENEROUS_SECONDS,
        cpu_seconds=GENEROUS_SECONDS,
        workers=1,
        queue_size=8,
        cache_entries=0,
        rate_limit_per_minute=0,
    )


def test_there_are_enough_programs() -> None:
    assert len(PROGRAMS) >= 50
    assert len({p.stem[:2] for p in PROGRAMS}) == len(PROGRAMS), "two programs share a number"


@pytest.mark.parametrize("construct", list(CONSTRUCTS))
def test_every_construct_is_used(construct: str) -> None:
    users = [
        p.name
        for p in PROGRAMS
        if all(re.search(pat, _source(p), re.MULTILINE) for pat in CONSTRUCTS[construct])
    ]
    assert users, f"no tutorial program uses {construct}"


def test_readme_lists_every_program() -> None:
    readme = _source(TUTORIALS / "README.md")
    missing = [p.name for p in PROGRAMS if f"`{p.name}`" not in readme]
    assert not missing, f"tests/tutorials/README.md does not list {missing}"


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_plain_run_defines_a_result(path: Path) -> None:
    reference = plain_reference(path)
    with_grad = [n for n, leaf in reference["leaves"].items() if leaf["grad"] is not None]
    ends_with_grad = bool(reference["events"]) and reference["events"][-1]["kind"] == "grad"
    assert reference["events"], f"{path.name} never calls backward() or autograd.grad()"
    assert with_grad or ends_with_grad, f"{path.name} leaves no named gradient to compare"


@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_api_gradients_equal_plain_torch(path: Path, tutorial_client: TestClient) -> None:
    reference = plain_reference(path)
    response = tutorial_client.post("/api/v1/trace", json={"code": _source(path)})
    assert response.status_code == 200, f"API answered {response.status_code}: {response.text}"
    assert_matches_plain(Graph.model_validate(response.json()), reference, "API")


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("autograd-explorer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


@pytest.mark.parametrize("sandbox", [False, True], ids=["cli", "cli-sandbox"])
@pytest.mark.parametrize("path", PROGRAMS, ids=IDS)
def test_cli_gradients_equal_plain_torch(path: Path, sandbox: bool) -> None:
    reference = plain_reference(path)
    proc = subprocess.run(
        [*_cli_command(), "trace", str(path), "--format", "json"]
        + (["--sandbox"] if sandbox else []),
        cwd=ROOT,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GENEROUS_SECONDS,
    )
    assert proc.returncode == 0, f"CLI exit {proc.returncode}: {proc.stderr[-3000:]}"
    via = "CLI --sandbox" if sandbox else "CLI"
    assert_matches_plain(Graph.model_validate_json(proc.stdout), reference, via)
