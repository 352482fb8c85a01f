"""Numbers print as torch prints them: compared with torch's own repr of the same tensors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from app.torch_print import torch_number, torch_value_texts


def torch_items(t: torch.Tensor) -> list[str]:
    """The printed items of a 1-D tensor's repr, padding removed."""
    text = repr(t)
    inner = re.search(r"\[(.*)\]", text, re.S)
    body = inner.group(1) if inner else re.search(r"tensor\((.*?)(,|\))", text).group(1)
    return [item.strip() for item in body.replace("\n", " ").split(",") if item.strip()]


@pytest.mark.parametrize(
    "values",
    [
        [138.83378601074219],
        [5.0],
        [3.0, 2.0, 5.0],
        [1.5, 2.0],
        [0.00001234, 1.0],
        [1e9, 2.0],
        [-0.25, 0.125, 3.0],
        [0.0],
        [1234.5, 0.5],
        [float("nan"), 1.5],
        [float("inf"), 2.0],
    ],
)
def test_values_print_like_torch(values: list[float]) -> None:
    t = torch.tensor(values, dtype=torch.float32)
    assert torch_value_texts(t.tolist()) == torch_items(t)


def test_micrograd_a_grad_prints_four_decimals() -> None:
    assert torch_number(138.83378601074219) == "138.8338"
    assert torch_number(5.0) == "5."


def test_integer_tensors_print_without_a_point() -> None:
    assert torch_value_texts([1, 2, 3], floating=False) == ["1", "2", "3"]
    assert torch_value_texts(["NaN"]) == ["nan"]


@pytest.mark.parametrize("values", [[0.5, 1234.5, 0.25, 7.0], [1e-5, 1.0, 2.0], [1.0, 2.0, 3.0]])
@pytest.mark.parametrize("limit", [0, 1, 3, 10])
def test_a_limit_writes_the_first_values_in_the_mode_of_all(values: list[float], limit) -> None:
    assert torch_value_texts(values, limit=limit) == torch_value_texts(values)[:limit]
    assert torch_value_texts(values, False, limit) == torch_value_texts(values, False)[:limit]


BROWSER_CASES = [
    [138.83378601074219],
    [5.0],
    [3.0, 2.0, 5.0],
    [-0.25, 0.125, 3.0],
    [0.00001234, 1.0],
    [1e9, 2.0],
    [1234.5, 0.5],
    [0.0],
    [1.03125],  # exactly halfway between two 4-decimal texts: torch rounds to even
    [0.15625, 2.0],
    [10312.5, 1.0],  # halfway in scientific notation
    [-2.65625, 0.5],
]


def test_the_browser_prints_numbers_as_the_server_does() -> None:
    """static/js/format.js (the numbers the browser formats itself: its tables, chart axes)
    writes every value as app/torch_print.py and torch do."""
    if shutil.which("node") is None:
        pytest.skip("needs node, which is not installed here")
    module = Path(__file__).resolve().parent.parent / "static" / "js" / "format.js"
    script = (
        f"import {{ formatValues }} from {json.dumps(module.as_uri())};\n"
        f"const cases = {json.dumps(BROWSER_CASES)};\n"
        "console.log(JSON.stringify(cases.map((values) => formatValues(values))));\n"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    browser = json.loads(done.stdout)
    for values, texts in zip(BROWSER_CASES, browser, strict=True):
        t = torch.tensor(values, dtype=torch.float32)
        assert texts == torch_value_texts(t.tolist()) == torch_items(t), values
