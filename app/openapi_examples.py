"""Example requests and responses of the JSON API, shown in the OpenAPI docs at /docs."""

from __future__ import annotations

import base64
from typing import Any

TINY_PROGRAM = (
    "import torch\nw = torch.tensor([2.0], requires_grad=True)\ny = w * 3\ny.backward()\n"
)
SHARED_WEIGHT_PROGRAM = (
    "import torch\n"
    "w = torch.tensor([1.0], requires_grad=True)\n"
    "x = torch.tensor([2.0], requires_grad=True)\n"
    "y = (x + w) * (w + 1)\n"
    "y.backward()\n"
)
MODULE_PROGRAM = (
    "import torch\n"
    "from torch import nn\n"
    "\n"
    "model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))\n"
    "loss = model(torch.ones(2, 3)).pow(2).mean()\n"
    "loss.backward()\n"
)


def base64url(code: str) -> str:
    """A program as the unpadded base64url text that GET /api/v1/render takes."""
    return base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")


# The Graph that POST /api/v1/trace returns for TINY_PROGRAM (null fields left out).
GRAPH: dict[str, Any] = {
    "schema_version": 1,
    "device": "cpu",
    "nodes": [
        {
            "id": "op0",
            "kind": "op",
            "label": "mul",
            "op": "mul",
            "grad_fn": "MulBackward0",
            "line": 3,
            "call": 0,
            "sequence_nr": 0,
            "saved": [
                {
                    "name": "other",
                    "value": {
                        "shape": [],
                        "dtype": "int64",
                        "values": 3,
                        "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                    },
                }
            ],
            "constants": ["3"],
            "next": ["op1", None],
        },
        {
            "id": "op1",
            "kind": "op",
            "label": "AccumulateGrad(w)",
            "op": "accumulate_grad",
            "grad_fn": "AccumulateGrad",
            "line": 3,
            "call": 0,
            "variable": "t0",
            "saved": [],
            "constants": [],
            "next": [],
        },
        {
            "id": "t0",
            "kind": "tensor",
            "label": "w",
            "name": "w",
            "line": 2,
            "shape": [1],
            "dtype": "float32",
            "device": "cpu",
            "requires_grad": True,
            "is_leaf": True,
            "retains_grad": False,
            "is_parameter": False,
            "version": 0,
            "expression": "torch.tensor([2.0], requires_grad=True)",
            "value": {
                "shape": [1],
                "dtype": "float32",
                "values": [2.0],
                "stats": {"min": 2.0, "max": 2.0, "mean": 2.0, "std": 0.0},
            },
            "grad": {
                "shape": [1],
                "dtype": "float32",
                "values": [3.0],
                "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
            },
        },
        {
            "id": "t1",
            "kind": "tensor",
            "label": "y",
            "name": "y",
            "line": 3,
            "shape": [1],
            "dtype": "float32",
            "device": "cpu",
            "requires_grad": True,
            "is_leaf": False,
            "retains_grad": False,
            "is_parameter": False,
            "grad_fn": "MulBackward0",
            "version": 0,
            "expression": "w * 3",
            "value": {
                "shape": [1],
                "dtype": "float32",
                "values": [6.0],
                "stats": {"min": 6.0, "max": 6.0, "mean": 6.0, "std": 0.0},
            },
        },
    ],
    "edges": [
        {"id": "e0", "source": "op1", "target": "t0"},
        {"id": "e1", "source": "t0", "target": "op0"},
        {"id": "e2", "source": "op0", "target": "t1"},
    ],
    "forward": [
        {
            "node": "op0",
            "nodes": ["op0"],
            "call": "mul",
            "inputs": ["t0"],
            "outputs": ["t1"],
            "line": 3,
            "after_pass": 0,
        }
    ],
    "backward": [
        {
            "root": ["t1"],
            "steps": [
                {
                    "node": "op0",
                    "grad_inputs": [
                        {
                            "shape": [1],
                            "dtype": "float32",
                            "values": [3.0],
                            "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                        },
                        None,
                    ],
                    "grad_outputs": [
                        {
                            "shape": [1],
                            "dtype": "float32",
                            "values": [1.0],
                            "stats": {"min": 1.0, "max": 1.0, "mean": 1.0, "std": 0.0},
                        }
                    ],
                    "rule": {
                        "known": True,
                        "grad_fn": "MulBackward0",
                        "output": "y",
                        "expression": "y = w * 3",
                        "terms": [
                            {
                                "slot": 0,
                                "input": "t0",
                                "name": "w",
                                "local": "3",
                                "product": "grad_y · 3",
                                "numbers": "1 · 3 = 3",
                                "agrees": True,
                            }
                        ],
                    },
                },
                {
                    "node": "op1",
                    "grad_inputs": [],
                    "grad_outputs": [
                        {
                            "shape": [1],
                            "dtype": "float32",
                            "values": [3.0],
                            "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                        }
                    ],
                    "rule": {
                        "known": True,
                        "grad_fn": "AccumulateGrad",
                        "output": "w",
                        "expression": "w.grad += grad_w",
                        "terms": [],
                        "accumulate": {
                            "leaf": "t0",
                            "name": "w",
                            "added": {
                                "shape": [1],
                                "dtype": "float32",
                                "values": [3.0],
                                "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                            },
                            "after": {
                                "shape": [1],
                                "dtype": "float32",
                                "values": [3.0],
                                "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                            },
                            "text": "w.grad = None + 3 = 3",
                        },
                    },
                },
            ],
            "grads": {
                "t0": {
                    "shape": [1],
                    "dtype": "float32",
                    "values": [3.0],
                    "stats": {"min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0},
                }
            },
            "kind": "backward",
            "line": 4,
            "added": False,
            "create_graph": False,
            "inputs": [],
            "results": {},
            "tensor_grads": {
                "t1": {
                    "shape": [1],
                    "dtype": "float32",
                    "values": [1.0],
                    "stats": {"min": 1.0, "max": 1.0, "mean": 1.0, "std": 0.0},
                }
            },
        }
    ],
    "layout": {
        "width": 375.5,
        "height": 242.0,
        "expanded": [],
        "collapsible": [],
        "nodes": [
            {
                "id": "t0",
                "kind": "tensor",
                "label": "w",
                "detail": "1 float32",
                "x": 36.7,
                "y": 0.0,
                "width": 99.6,
                "height": 52.0,
                "members": [],
            },
            {
                "id": "op1",
                "kind": "op",
                "label": "AccumulateGrad",
                "detail": "→ w.grad",
                "x": 191.3,
                "y": 0.0,
                "width": 184.4,
                "height": 52.0,
                "members": [],
            },
            {
                "id": "op0",
                "kind": "op",
                "label": "mul",
                "detail": "MulBackward0",
                "x": 11.1,
                "y": 95.0,
                "width": 150.8,
                "height": 52.0,
                "members": [],
            },
            {
                "id": "t1",
                "kind": "tensor",
                "label": "y",
                "detail": "1 float32",
                "x": 36.7,
                "y": 170.0,
                "width": 99.6,
                "height": 52.0,
                "members": [],
            },
        ],
        "edges": [
            {
                "id": "le0",
                "source": "op1",
                "target": "t0",
                "path": "M183.3,36.0 C185.9,36.0 188.6,36.0 191.2,36.0",
                "members": ["e0"],
            },
            {
                "id": "le1",
                "source": "t0",
                "target": "op0",
                "path": "M86.5,72.2 C86.5,76.4 86.5,80.6 86.5,84.8 L86.5,94.8",
                "members": ["e1"],
            },
            {
                "id": "le2",
                "source": "op0",
                "target": "t1",
                "path": "M86.5,147.4 C86.5,151.2 86.5,155.3 86.5,159.4 L86.5,169.7",
                "members": ["e2"],
            },
        ],
        "clusters": [],
        "node_of": {"op0": "op0", "op1": "op1", "t0": "t0", "t1": "t1"},
    },
    "series": [
        {"name": "loss", "kind": "loss", "values": [6.0]},
        {"name": "w", "kind": "parameter", "values": [2.0]},
    ],
    "stdout": "",
    "notes": [],
    "badges": {
        "forward": [{"t0": "= [2.]", "t1": "= [6.]"}],
        "backward": [[{"t1": "∂ [1.]", "t0": "∂ [3.]"}, {"t0": "∂ [3.] → .grad [3.]"}]],
        "sizes": {"t0": {"chars": 19, "lines": 2}, "t1": {"chars": 6, "lines": 2}},
    },
    "figures": [],
}
TRACE_REQUESTS: dict[str, dict[str, Any]] = {
    "leaf used twice": {
        "summary": "w feeds two ops; its gradient is 3 + 2 = 5",
        "value": {"code": SHARED_WEIGHT_PROGRAM, "device": "cpu", "seed": 0},
    },
    "smallest": {"summary": "y = w * 3", "value": {"code": TINY_PROGRAM}},
    "GPU when there is one": {
        "summary": "device auto: CUDA when the server has it and allows it, else CPU",
        "value": {"code": TINY_PROGRAM, "device": "auto", "seed": 7},
    },
}
LAYOUT_REQUESTS: dict[str, dict[str, Any]] = {
    "expand a module": {
        "summary": "show the inside of nn.Sequential's first Linear",
        "value": {"code": MODULE_PROGRAM, "expanded": ["0"]},
    },
}
RENDER_REQUESTS: dict[str, dict[str, Any]] = {
    "SVG at the last backward step": {
        "summary": "the picture of the player at backward:0:4",
        "value": {"code": SHARED_WEIGHT_PROGRAM, "format": "svg", "step": "backward:0:4"},
    },
    "offline HTML player, dark, Chinese": {
        "summary": "one self-contained file that plays forward and backward",
        "value": {"code": TINY_PROGRAM, "format": "html", "theme": "dark", "lang": "zh"},
    },
}
RENDER_CODE_PARAMETER: dict[str, dict[str, Any]] = {
    "y = w * 3": {"summary": "base64url of the program", "value": base64url(TINY_PROGRAM)},
}
RENDER_RESPONSE_EXAMPLES: dict[str, dict[str, Any]] = {
    "image/svg+xml": {"example": '<svg xmlns="http://www.w3.org/2000/svg" ...>...</svg>'},
    "text/vnd.graphviz; charset=utf-8": {"example": 'digraph G {\n  "t0" [label=<...>];\n}'},
    "text/html; charset=utf-8": {
        "example": "<!doctype html>\n<html>...the offline player...</html>"
    },
    "application/pdf": {"example": "%PDF-1.5 ... one 16:9 page per player step ..."},
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": {
        "example": "PK... one slide per player step, narration in the notes ..."
    },
    "image/gif": {"example": "GIF89a ... one frame per player step ..."},
    "video/mp4": {"example": "... an H.264 video, one frame per player step ..."},
}
HEALTH: dict[str, Any] = {
    "status": "ok",
    "version": "0.1.0",
    "torch": "2.13.0+cpu",
    "cuda": False,
    "layers": {
        "jail": True,
        "fresh_process": True,
        "clean_memory": True,
        "seccomp": True,
        "network": True,
        "memory": True,
        "cpu_time": True,
        "wall_time": True,
        "language_policy": True,
    },
    "layout": True,
    "notes": [],
    "workers_ok": True,
    "workers_problem": None,
    "workers_restarts": 0,
    "shared_state": "memory",
    "programs_run": 12,
}
DEVICES: dict[str, Any] = {
    "devices": [
        {"id": "cpu", "kind": "cpu", "name": "AMD EPYC", "total_memory_bytes": 25276514304},
        {
            "id": "cuda:0",
            "kind": "cuda",
            "name": "NVIDIA H100 80GB HBM3",
            "total_memory_bytes": 85520809984,
        },
    ],
    "cuda": True,
}
EXAMPLE_SUMMARIES: list[dict[str, Any]] = [
    {
        "id": "implicit_backward",
        "title_en": "A neuron without backward(): the explorer runs it",
        "title_zh": "没有调用 backward() 的神经元:由探索器运行",
        "lesson": (
            "the last result is a scalar that requires grad, "
            "so the explorer runs its backward for you."
        ),
        "lesson_zh": "最后的结果是需要梯度的标量,所以由探索器替你调用 backward。",
    }
]
EXAMPLE: dict[str, Any] = {
    **EXAMPLE_SUMMARIES[0],
    "code": (
        "import torch\n"
        "\n"
        "x = torch.tensor([1.0, 2.0, 3.0])\n"
        "w = torch.tensor([0.5, -0.25, 0.1], requires_grad=True)\n"
        "b = torch.tensor(0.2, requires_grad=True)\n"
        "z = torch.dot(w, x) + b\n"
        "out = torch.sigmoid(z)\n"
    ),
    "captions": {},
}
ERROR: dict[str, Any] = {
    "detail": {
        "type": "LimitExceeded",
        "limit": "wall_time",
        "message": "the program ran longer than 30 s",
    }
}
