"""The command line: trace exit codes and output, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_trace_prints_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "p.py"
    program.write_text(
        "import torch\nw = torch.tensor(2., requires_grad=True)\ny = w * w\ny.backward()\n"
    )
    code, out, _ = run(capsys, "trace", str(program), "--format", "json")
    graph = json.loads(out)
    assert code == 0 and graph["schema_version"] == 1 and graph["error"] is None
    (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
    assert graph["backward"][0]["grads"][w["id"]]["values"] == 4.0


def test_trace_no_values_prints_the_structure_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "p.py"
    program.write_text(
        "import torch\nw = torch.tensor([2., 3.], requires_grad=True)\n"
        "for i in range(3):\n    y = (w * w).sum()\n    y.backward()\n"
    )
    code, out, _ = run(capsys, "trace", str(program), "--no-values")
    graph = json.loads(out)
    assert code == 0 and graph["error"] is None and len(graph["backward"]) == 3
    (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
    assert w["shape"] == [2] and w["value"] == {
        "shape": [2],
        "dtype": "float32",
        "values": None,
        "stats": None,
        "heatmap": None,
        "histogram": None,
    }
    assert graph["backward"][0]["grads"][w["id"]]["values"] is None
    assert [len(p["steps"]) for p in graph["backward"]] == [3, 3, 3] and not graph["series"]


def test_trace_user_error_exits_1_with_partial_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "p.py"
    program.write_text(
        "import torch\nw = torch.ones(2, requires_grad=True)\ny = w * 3\nw.add_(1)\n"
    )
    code, out, err = run(capsys, "trace", str(program))
    graph = json.loads(out)
    assert code == 1 and graph["error"]["line"] == 4 and "line 4" in err
    assert any(n.get("name") == "y" for n in graph["nodes"])


def test_trace_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", str(tmp_path / "missing.py"))
    assert code == 2 and out == "" and "cannot read" in err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["trace"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["trace", "x.py", "--device", "tpu"])
    assert info.value.code == 2


def test_cuda_absent_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    program = tmp_path / "p.py"
    program.write_text("import torch\n")
    code, _, err = run(capsys, "trace", str(program), "--device", "cuda")
    assert code == 2 and "CUDA" in err


def test_schema_is_json_schema_of_graph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "Graph"
    assert {"nodes", "edges", "forward", "backward", "error"} <= set(schema["properties"])


def test_serve_refuses_public_address_without_isolation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    monkeypatch.setenv("AE_ISOLATION", "false")
    get_settings.cache_clear()
    try:
        code, _, err = run(capsys, "serve", "--host", "0.0.0.0")
    finally:
        get_settings.cache_clear()
    assert code == 2 and "non-loopback" in err


def test_sandboxed_trace_gives_the_courtesy_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "p.py"
    program.write_text("import torch\nimport subprocess\n")
    code, out, err = run(capsys, "trace", "--sandbox", str(program))
    assert code == 1 and out == "" and "line 2" in err and "other processes" in err


def test_own_file_runs_in_process_as_python_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first tensor of a fresh process made with the legacy constructor, and modules that
    # the server's courtesy check would refuse: the file is the user's own
    program = tmp_path / "p.py"
    program.write_text(
        "import subprocess\nimport torch\nx = torch.Tensor([2.0])\nx.requires_grad = True\n"
        "y = x * x * x\ny.backward()\nprint(subprocess.__name__)\n"
    )
    code, out, _ = run(capsys, "trace", str(program))
    graph = json.loads(out)
    (x,) = [n for n in graph["nodes"] if n.get("name") == "x"]
    assert code == 0 and graph["error"] is None and graph["stdout"] == "subprocess\n"
    assert graph["backward"][0]["grads"][x["id"]]["values"] == [12.0]


def test_cli_and_sandbox_agree_on_gradients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "p.py"
    program.write_text(
        "import torch\nw = torch.tensor([1.5, -2.0], requires_grad=True)\n"
        "y = (w.exp() * w).sum()\ny.backward()\n"
    )
    grads = []
    for extra in ([], ["--sandbox"]):
        code, out, _ = run(capsys, "trace", *extra, str(program))
        graph = json.loads(out)
        (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
        grads.append(graph["backward"][0]["grads"][w["id"]]["values"])
        assert code == 0
    assert grads[0] == grads[1]


def test_wall_time_limit_names_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    program = tmp_path / "p.py"
    program.write_text("import torch\nwhile True:\n    pass\n")
    monkeypatch.setenv("AE_WALL_SECONDS", "1")
    get_settings.cache_clear()
    try:
        code, out, err = run(capsys, "trace", str(program))
    finally:
        get_settings.cache_clear()
    assert code == 1 and out == "" and "wall_time" in err and "AE_WALL_SECONDS" in err


def test_serve_refuses_a_public_address_without_the_jail(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sandbox import jail

    monkeypatch.setattr(jail, "bubblewrap", lambda: None)
    code, _, err = run(capsys, "serve", "--host", "0.0.0.0")
    assert code == 2 and "without the jail" in err and "bubblewrap" in err
    assert "--allow-unjailed" in err


@pytest.mark.parametrize(("body", "expected"), [("y.backward()\n", 0), ("w.add_(1)\n", 1), ("", 0)])
def test_the_command_exits_with_all_its_output_written(
    tmp_path: Path, body: str, expected: int
) -> None:
    program = tmp_path / "p.py"
    program.write_text(
        "import torch\nw = torch.ones(300, requires_grad=True)\ny = (w * 3).sum()\n" + body
    )
    command = [sys.executable, "-m", "app.cli", "trace", str(program), "--pretty"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == expected, done.stderr
    graph = json.loads(done.stdout)  # the whole JSON, over a pipe
    assert any(n.get("name") == "y" for n in graph["nodes"])
    svg = tmp_path / "g.svg"
    command = [sys.executable, "-m", "app.cli", "render", str(program), "--format", "dot"]
    done = subprocess.run([*command, "-o", str(svg)], capture_output=True, text=True, timeout=120)
    assert done.returncode == expected and f"wrote {svg}" in done.stderr
    assert svg.read_text().rstrip().endswith("}")


def test_serve_refuses_root_where_no_cgroup_bounds_the_jail(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sandbox import jail

    monkeypatch.setattr(jail, "runs_as_root", lambda: True)
    monkeypatch.setattr(jail, "tasks_cgroup", lambda: None)
    code, _, err = run(capsys, "serve")
    assert code == 2 and "refusing to run as root" in err and "--allow-root" in err


CHAIN = (
    "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor i in range({ops}):\n"
    "    y = y * 1.0001\ny.backward()\nprint(x.grad)\n"
)


def test_trace_honours_max_nodes_from_the_flag_and_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    program = tmp_path / "chain.py"
    program.write_text(CHAIN.format(ops=100))
    code, out, _ = run(capsys, "trace", str(program), "--max-nodes", "40")
    graph = json.loads(out)
    assert code == 0 and len(graph["nodes"]) == 40 and graph["error"] is None
    assert [m["key"] for m in graph["messages"]] == ["nodeLimit"]
    assert graph["stdout"] == "tensor([1.0101])\n"  # the program ran on: 1.0001 ** 100
    monkeypatch.setenv("AE_MAX_NODES", "60")
    get_settings.cache_clear()
    try:
        code, out, _ = run(capsys, "trace", str(program))
    finally:
        get_settings.cache_clear()
    assert code == 0 and len(json.loads(out)["nodes"]) == 60
    with pytest.raises(SystemExit) as info:
        main(["trace", str(program), "--max-nodes", "many"])
    assert info.value.code == 2


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("autograd-explorer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("ops", [10_000, 50_000])
def test_deep_chains_give_a_graph_and_never_a_signal(tmp_path: Path, ops: int) -> None:
    program = tmp_path / "chain.py"
    program.write_text(CHAIN.format(ops=ops))
    env = {
        **os.environ,
        "AE_WALL_SECONDS": "600",
        "AE_CPU_SECONDS": "600",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),  # this checkout's app
    }
    proc = subprocess.run(
        [*_cli(), "trace", str(program), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # a signal is a negative code
    graph = json.loads(proc.stdout)
    assert graph["nodes"] and graph["error"] is None
    keys = [m["key"] for m in graph["messages"]]
    if ops * 2 > 20_000:  # the default node limit ends the recording, the program runs on
        assert keys == ["nodeLimit"] and len(graph["nodes"]) == 20_000
    assert graph["stdout"].startswith("tensor([")


def test_render_expands_all_or_to_a_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_repeat_fold import LSTM_LINE, LSTM_PROGRAM, LSTM_STEPS

    program = tmp_path / "lstm.py"
    program.write_text(LSTM_PROGRAM)

    def dot_of(*flags: str) -> str:
        out = tmp_path / "view.dot"
        code, _, err = run(
            capsys, "render", str(program), "--format", "dot", "-o", str(out), *flags
        )
        assert code == 0, err
        return out.read_text()

    folded = dot_of()
    assert f"<b>▸ line {LSTM_LINE} × {LSTM_STEPS}</b>" in folded
    assert f"line {LSTM_LINE}#1" not in folded
    one_level = dot_of("--depth", "1")  # the fold open: a closed box per iteration
    assert f'label="line {LSTM_LINE} × {LSTM_STEPS}"' in one_level
    assert all(f"▸ line {LSTM_LINE}#{i}<" in one_level for i in range(1, LSTM_STEPS + 1))
    everything = dot_of("--expanded", "all")
    assert f"▸ line {LSTM_LINE}#" not in everything  # every iteration open to its ops
    assert everything.count("cell.weight_ih") >= 1 and everything.count("lstm_cell") == LSTM_STEPS
    named = f"fold:line:{LSTM_LINE},line:{LSTM_LINE + 1}"  # the fold and the line after it
    assert dot_of("--expanded", named, "--depth", "0") == one_level
    with pytest.raises(SystemExit) as info:
        main(["render", str(program), "--depth", "-1"])
    assert info.value.code == 2 and "--depth" in capsys.readouterr().err
