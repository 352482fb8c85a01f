"""No 500 for any input: non-finite numbers, huge step strings, a backward that returns None,
exceptions that fail to print, BaseException. Through the API, courtesy layer off."""

from __future__ import annotations

import json

import pytest
import torch
from fastapi.testclient import TestClient

from app.dot_run import dot_available
from tests.conftest import SAFE_PROGRAM, w_grad

pytestmark = pytest.mark.slow
LESSON = "import torch\nx = torch.ones(2, requires_grad=True)\n(x * 3).sum().backward()\n"
CUSTOM_FUNCTION = """import torch
class Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * 2 + y
    @staticmethod
    def backward(ctx, grad):
        return {returns}
x = torch.ones(2, requires_grad=True)
y = torch.ones(2, requires_grad=True)
Twice.apply(x, y).sum().backward()
"""


@pytest.fixture(scope="module")
def client(client_with) -> TestClient:
    return client_with(
        language_layer=False, wall_seconds=120, cpu_seconds=30, workers=2, rate_limit_per_minute=0
    )


def post(client: TestClient, path: str, text: str) -> tuple[int, object]:
    response = client.post(path, content=text, headers={"content-type": "application/json"})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("path", "body", "field", "echo"),
    [
        ("/api/v1/trace", '{"code": "x = 1", "seed": NaN}', "seed", "NaN"),
        ("/api/v1/trace", '{"code": "x = 1", "seed": 1e400}', "seed", "Infinity"),
        ("/api/v1/trace", '{"code": "x = 1", "seed": -Infinity}', "seed", "-Infinity"),
        ("/api/v1/layout", '{"code": "x = 1", "pass_index": Infinity}', "pass_index", "Infinity"),
        ("/api/v1/render", '{"code": "x = 1", "seed": NaN}', "seed", "NaN"),
    ],
)
def test_non_finite_numbers_are_a_422_that_names_the_field(
    client: TestClient, path: str, body: str, field: str, echo: str
) -> None:
    status, answer = post(client, path, body)
    assert status == 422
    (error,) = answer["detail"]
    assert error["loc"] == ["body", field] and error["input"] == echo


def test_a_seed_with_thousands_of_digits_is_a_400(client: TestClient) -> None:
    status, answer = post(client, "/api/v1/trace", '{"code": "x = 1", "seed": 1' + "0" * 5000 + "}")
    assert status == 400 and answer["detail"] == "There was an error parsing the body"


@pytest.mark.skipif(not dot_available(), reason="needs graphviz")
@pytest.mark.parametrize("step", ["forward:" + "9" * 5000, "backward:0:" + "9" * 5000])
def test_a_step_with_thousands_of_digits_is_a_bad_step(client: TestClient, step: str) -> None:
    status, answer = post(client, "/api/v1/render", json.dumps({"code": LESSON, "step": step}))
    assert status == 400 and answer["detail"]["type"] == "BadStep"
    assert "forward:N or backward:P:N" in answer["detail"]["message"]


def torch_grads(returns: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """x.grad and y.grad as torch itself computes them for the same program."""
    names: dict = {}
    exec(CUSTOM_FUNCTION.format(returns=returns), names)  # noqa: S102 - the test's own program
    return names["x"].grad, names["y"].grad


def grad_of(graph: dict, name: str) -> list[float] | None:
    (node,) = [n for n in graph["nodes"] if n.get("name") == name]
    found = graph["backward"][0]["grads"].get(node["id"])
    return None if found is None else found["values"]


@pytest.mark.parametrize("returns", ["grad * 2, None", "None, grad", "None, None"])
def test_a_custom_backward_that_returns_none_gives_torchs_gradients(
    client: TestClient, returns: str
) -> None:
    code = CUSTOM_FUNCTION.format(returns=returns)
    response = client.post("/api/v1/trace", json={"code": code})
    assert response.status_code == 200, response.text
    graph = response.json()
    assert graph["error"] is None
    x_grad, y_grad = torch_grads(returns)
    assert grad_of(graph, "x") == (None if x_grad is None else x_grad.tolist())
    assert grad_of(graph, "y") == (None if y_grad is None else y_grad.tolist())


@pytest.mark.parametrize(
    ("code", "error_type", "message"),
    [
        (
            "class Unprintable(Exception):\n    def __str__(self):\n        raise ValueError('no')\n"
            "raise Unprintable()\n",
            "Unprintable",
            "<exception str() failed>",
        ),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise GeneratorExit('closed')\n", "GeneratorExit", "closed"),
        ("class Mine(BaseException):\n    pass\nraise Mine('own')\n", "Mine", "own"),
    ],
)
def test_exceptions_that_fail_to_print_or_are_base_exceptions_are_the_programs_error(
    client: TestClient, code: str, error_type: str, message: str
) -> None:
    response = client.post("/api/v1/trace", json={"code": LESSON + code})
    assert response.status_code == 200, response.text
    graph = response.json()
    assert graph["error"]["type"] == error_type and graph["error"]["message"] == message
    assert graph["error"]["line"] == code.count("\n") + LESSON.count("\n")
    assert grad_of(graph, "x") == [3.0, 3.0]  # the graph before the error is kept
    check = client.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
    assert check.status_code == 200 and w_grad(check.json()) == [5.0]


def test_system_exit_ends_the_program_with_its_graph(client: TestClient) -> None:
    response = client.post("/api/v1/trace", json={"code": LESSON + "raise SystemExit(3)\n"})
    assert response.status_code == 200
    graph = response.json()
    assert graph["error"] is None and grad_of(graph, "x") == [3.0, 3.0]
    assert any("exit(3)" in note for note in graph["notes"])
