"""The `autograd-explorer` command: serve, trace, render, schema."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or an unreadable file: exit code 2 with the message."""


def _read_program(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _record(args: argparse.Namespace) -> Any:
    """The program's Graph: in this process (the file is the user's own) or, with --sandbox,
    jailed exactly as the server would run it. Exits through UsageError / _Refused."""
    from app.config import get_settings
    from app.errors import DeviceUnavailable, LimitExceeded
    from app.schemas import Graph, TraceRequest

    code = _read_program(args.file)
    settings = get_settings()
    if getattr(args, "max_nodes", None) is not None:
        settings = settings.model_copy(update={"max_nodes": args.max_nodes})
    if not args.sandbox:
        from app.tracing import options_from, trace_code

        try:
            return trace_code(
                code,
                args.device,
                args.seed,
                options_from(settings),
                wall_seconds=settings.wall_seconds,
            )
        except DeviceUnavailable as exc:
            raise UsageError(str(exc)) from None
        except LimitExceeded as exc:
            raise _Refused(f"limit '{exc.limit}' exceeded: {exc.message}") from None
    from app.sandbox.pool import WorkerPool
    from app.tracing import TraceFailure

    pool = WorkerPool(settings)
    pool.start()
    try:
        payload = pool.submit(TraceRequest(code=code, device=args.device, seed=args.seed)).result()
    except TraceFailure as failure:
        detail = failure.detail
        if detail.type == "DeviceUnavailable":
            raise UsageError(detail.message) from None
        where = f" (line {detail.line}, column {detail.col})" if detail.line else ""
        what = f"limit '{detail.limit}' exceeded" if detail.limit else f"refused{where}"
        raise _Refused(f"{what}: {detail.message}") from None
    finally:
        pool.close()
    return Graph.model_validate_json(payload)


class _Refused(Exception):
    """The program was refused or hit a limit: exit code 1 with the message."""


def cmd_trace(args: argparse.Namespace) -> int:
    """Print the recorded Graph of a program."""
    try:
        graph = _record(args)
    except _Refused as exc:
        print(f"autograd-explorer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.format == "graphml":
        from app.graph_networkx import NetworkxMissing, to_graphml

        try:
            sys.stdout.buffer.write(to_graphml(graph))
            sys.stdout.flush()
        except NetworkxMissing as exc:
            raise UsageError(str(exc)) from None
    else:
        print(graph.model_dump_json(indent=2 if args.pretty else None))
    if graph.error is not None:
        where = f" (line {graph.error.line})" if graph.error.line else ""
        print(f"{graph.error.type}{where}: {graph.error.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Write the graph of a program as SVG, PNG, DOT or a standalone HTML player."""
    from app.errors import LimitExceeded
    from app.export import BadStep, LayoutUnavailable, filename, render

    try:
        graph = _record(args)
        expanded = [p for p in (args.expanded or "").split(",") if p]
        data = render(graph, args.format, expanded, args.step, args.theme, args.lang)
    except BadStep as exc:
        raise UsageError(str(exc)) from None
    except _Refused as exc:
        print(f"autograd-explorer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (LimitExceeded, LayoutUnavailable) as exc:
        print(f"autograd-explorer: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    out = Path(args.output or filename(args.format))
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)
    if graph.error is not None:
        print(
            f"{graph.error.type} (line {graph.error.line}): {graph.error.message}", file=sys.stderr
        )
        return EXIT_USER_ERROR
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of the Graph (the v1 contract)."""
    from app.schemas import graph_json_schema

    print(json.dumps(graph_json_schema(), indent=2))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the web server."""
    import uvicorn

    from app.config import get_settings
    from app.http_server import server_config
    from app.main import create_app

    settings = get_settings()
    if not _is_loopback(args.host) and not args.allow_unjailed:
        if not settings.isolation:
            raise UsageError(
                "refusing to listen on a non-loopback address with AE_ISOLATION=false: "
                "programs would run in the server process (--allow-unjailed overrides)"
            )
        from app.sandbox import jail

        status = jail.probe() if settings.jail else jail.JailStatus(False, "AE_JAIL=false")
        if not status.available:
            raise UsageError(
                f"refusing to listen on {args.host} without the jail ({status.reason}); "
                "serve on 127.0.0.1, or pass --allow-unjailed to accept the risk"
            )
    print(f"Autograd Explorer on http://{args.host}:{args.port}", file=sys.stderr)
    config = server_config(create_app(settings), settings, host=args.host, port=args.port)
    uvicorn.Server(config).run()
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 10:
        raise argparse.ArgumentTypeError("at least 10")
    return value


def _add_max_nodes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-nodes",
        type=_positive,
        help="nodes recorded before the rest of the program runs unrecorded "
        "(default: AE_MAX_NODES, 20000)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="autograd-explorer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the explorer web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-unjailed",
        action="store_true",
        help="serve a non-loopback address even when the workers cannot be jailed",
    )
    serve.set_defaults(run=cmd_serve)

    trace = sub.add_parser("trace", help="record a program and print its graph")
    trace.add_argument("file", help="a .py program")
    trace.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    trace.add_argument("--seed", type=int, default=0)
    trace.add_argument(
        "--format",
        choices=["json", "graphml"],
        default="json",
        help="the Graph as JSON, or as GraphML for networkx, Gephi or yEd (needs networkx)",
    )
    trace.add_argument("--pretty", action="store_true", help="indent the JSON")
    trace.add_argument("--sandbox", action="store_true", help="run jailed, as the server would")
    _add_max_nodes(trace)
    trace.set_defaults(run=cmd_trace)

    render = sub.add_parser("render", help="export a program's graph for slides")
    render.add_argument("file", help="a .py program")
    render.add_argument("--format", choices=["svg", "png", "dot", "html"], default="svg")
    render.add_argument("-o", "--output", help="output file (default: autograd-graph.FORMAT)")
    render.add_argument("--step", help="forward:N or backward:P:N (default: end of the last pass)")
    render.add_argument("--theme", choices=["light", "dark"], default="light")
    render.add_argument("--lang", choices=["en", "zh"], default="en")
    render.add_argument("--expanded", help="comma-separated modules to show expanded")
    render.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--sandbox", action="store_true", help="run jailed, as the server would")
    _add_max_nodes(render)
    render.set_defaults(run=cmd_render)

    schema = sub.add_parser("schema", help="print the JSON Schema of the Graph")
    schema.set_defaults(run=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"autograd-explorer: {exc}", file=sys.stderr)
        return EXIT_USAGE


# commands that hold nothing to clean up once their output is written
QUICK_EXIT_COMMANDS = frozenset({"trace", "render", "schema"})


def run(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the console script: main(), then the exit.

    After trace, render and schema the process ends without the interpreter's teardown, which
    unloads torch and frees every recorded object one by one: about as much CPU time as
    importing torch, for nothing once the output is written.
    """
    argv = sys.argv[1:] if argv is None else argv
    code = main(argv)
    if argv and argv[0] in QUICK_EXIT_COMMANDS:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: nothing more can be said
            pass
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
