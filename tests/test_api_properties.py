"""Property-based: whatever code, names and render parameters arrive, the API never answers 5xx
(except 503 busy) and keeps serving."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# Any code point, lone surrogates included: JSON can carry them as \ud800 escapes.
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)
NAMES = st.text(alphabet=st.characters(blacklist_categories=()), min_size=1, max_size=30)
PROPERTY = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def named_module_program(name: str) -> str:
    """A program whose one module is a ModuleDict entry called name, printed too."""
    return (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, key):\n"
        "        super().__init__()\n"
        "        self.key = key\n"
        "        self.blocks = nn.ModuleDict({key: nn.Linear(2, 2)})\n"
        "    def forward(self, x):\n"
        "        return self.blocks[self.key](x)\n"
        f"key = {name!r}\n"
        "print(key)\n"
        "y = Net(key)(torch.ones(1, 2)).sum()\ny.backward()\n"
    )


def send(client: TestClient, method: str, path: str, **kwargs: object) -> int:
    if "body" in kwargs:
        kwargs["content"] = json.dumps(kwargs.pop("body"), ensure_ascii=True).encode()
        kwargs["headers"] = {"content-type": "application/json"}
    status = client.request(method, path, **kwargs).status_code
    assert status < 500 or status == 503, (path, kwargs, status)
    return status


def still_serving(client: TestClient) -> None:
    assert client.get("/api/v1/health").status_code == 200


@PROPERTY
@example(code="x = '\ud800'", seed=0, device="cpu")
@example(code="print('\\ud800')", seed=0, device="cpu")
@given(code=ANY_TEXT, seed=st.integers(-5, 2**33), device=st.sampled_from(["cpu", "gpu", ""]))
def test_any_code_string(api_client: TestClient, code: str, seed: int, device: str) -> None:
    send(api_client, "POST", "/api/v1/trace", body={"code": code, "seed": seed, "device": device})
    still_serving(api_client)


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")
@PROPERTY
@given(
    name=NAMES,
    fmt=st.one_of(st.sampled_from(["svg", "png", "dot", "html"]), ANY_TEXT),
    step=st.one_of(st.none(), st.sampled_from(["forward:1", "backward:0:2", "backward:9:9"])),
    theme=st.sampled_from(["light", "dark", "pink"]),
    expanded=st.lists(st.one_of(NAMES, st.just("blocks")), max_size=3),
)
@example(name="a\\b", fmt="svg", step=None, theme="light", expanded=["blocks"])
@example(name="<!-- \ud800 </script>", fmt="html", step=None, theme="dark", expanded=["blocks"])
@example(name="0", fmt="\ud800", step=None, theme="light", expanded=[])
def test_any_module_name_and_render_parameters(
    api_client: TestClient, name: str, fmt: str, step: str | None, theme: str, expanded: list[str]
) -> None:
    code = named_module_program(name)
    if send(api_client, "POST", "/api/v1/trace", body={"code": code}) == 200:
        paths = ["blocks", f"blocks.{name}"]
        send(api_client, "POST", "/api/v1/layout", body={"code": code, "expanded": paths})
    body = {"code": code, "format": fmt, "step": step, "theme": theme, "expanded": expanded}
    send(api_client, "POST", "/api/v1/render", body=body)
    send(api_client, "POST", "/api/v1/layout", body={"code": code, "expanded": expanded})
    encoded = base64.urlsafe_b64encode(code.encode("utf-8", "replace")).decode()
    params = {"code": encoded, "format": fmt, "step": step or "", "theme": theme, "lang": "x"}
    # percent-encoded by hand: a lone surrogate travels as the bytes a careless client would
    # send (not UTF-8), which the HTTP client itself refuses to encode
    query = "&".join(
        f"{key}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}"
        for key, value in params.items()
    )
    send(api_client, "GET", f"/api/v1/render?{query}")
    still_serving(api_client)
