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
    from app.errors import BadAnswer, DeviceUnavailable, LimitExceeded
    from app.schemas import TraceRequest

    code = _read_program(args.file)
    settings = get_settings()
    if getattr(args, "max_nodes", None) is not None:
        settings = settings.model_copy(update={"max_nodes": args.max_nodes})
    values = not getattr(args, "no_values", False)
    if not args.sandbox:
        from dataclasses import replace

        from app.tracing import options_from, trace_code

        try:
            return trace_code(
                code,
                args.device,
                args.seed,
                replace(options_from(settings), values=values),
                wall_seconds=settings.wall_seconds,
            )
        except DeviceUnavailable as exc:
            raise UsageError(str(exc)) from None
        except LimitExceeded as exc:
            raise _Refused(f"limit '{exc.limit}' exceeded: {exc.message}") from None
    from app.errors import TraceFailure
    from app.sandbox.pool import WorkerParentHandle
    from app.tracing import RECORDING

    pool = WorkerParentHandle(settings.pool_settings(), RECORDING)
    pool.start()
    try:
        request = TraceRequest(code=code, device=args.device, seed=args.seed, values=values)
        payload = pool.submit(request).result()
    except TraceFailure as failure:
        detail = failure.detail
        if detail.type == "DeviceUnavailable":
            raise UsageError(detail.message) from None
        where = f" (line {detail.line}, column {detail.col})" if detail.line else ""
        what = f"limit '{detail.limit}' exceeded" if detail.limit else f"refused{where}"
        raise _Refused(f"{what}: {detail.message}") from None
    finally:
        pool.close()
    from app.graph_jobs import GraphBounds, read_graph
    from app.recorder import most_passes

    bounds = GraphBounds(settings.max_nodes, most_passes(settings.max_passes))
    try:  # what the jailed program sent back is held to the recorder's bounds, as the server does
        return read_graph(payload, bounds)
    except BadAnswer as exc:
        raise _Refused(f"the worker's answer was not understood: {exc}") from None


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


DECK_FORMATS = ("pdf", "pptx", "gif", "mp4")


def _export(args: argparse.Namespace, graph: Any, code: str) -> bytes:
    """The bytes of the export the arguments ask for: a still or a deck."""
    from app.step_caption import lesson_of, narration_for

    expanded = expanded_groups(args)
    narration = narration_for(code)
    if args.format in DECK_FORMATS:
        from app.deck import DeckOptions, render_deck

        options = DeckOptions(
            format=args.format,
            steps=args.steps,
            theme=args.theme,
            lang=args.lang,
            expanded=tuple(expanded),
            aspect=args.aspect,
            seconds=args.seconds,
            title=lesson_of(code) or Path(args.file).stem,
            max_pages=args.max_pages,
        )
        return render_deck(graph, options, narration)
    from app.export import render

    return render(graph, args.format, expanded, args.step, args.theme, args.lang, None, narration)


def expanded_groups(args: argparse.Namespace) -> list[str]:
    """The groups --expanded and --depth open, as a layout reads them ('*' for all)."""
    from app.schemas import EXPAND_ALL, EXPAND_DEPTH_PREFIX

    named = [p.strip() for p in (args.expanded or "").split(",") if p.strip()]
    expanded = [EXPAND_ALL if p == "all" else p for p in named]
    if args.depth is not None:
        expanded.append(f"{EXPAND_DEPTH_PREFIX}{args.depth}")
    return expanded


def _say_folded(graph: Any, args: argparse.Namespace) -> None:
    """Print the notes of a view that was folded back to fit (the export shows it folded)."""
    from app.errors import LimitExceeded
    from app.layout_view import visible_boxes
    from app.pass_view import pass_of_step, pass_subgraph

    shown = pass_subgraph(graph, pass_of_step(args.step, graph))
    try:
        _, units = visible_boxes(shown, set(expanded_groups(args)))
    except LimitExceeded:
        return
    for message in units.messages:
        print(f"autograd-explorer: {message.text}", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    """Write the graph of a program as SVG, PNG, DOT, a standalone HTML player, or a deck of
    every step as PDF, PPTX, GIF or MP4."""
    from app.dot_run import LayoutUnavailable
    from app.errors import LimitExceeded
    from app.export import BadStep, filename
    from app.page_render import RendererUnavailable

    if args.format not in DECK_FORMATS and (args.steps or args.aspect != "16:9"):
        raise UsageError("--steps and --aspect make decks: use --format pdf, pptx, gif or mp4")
    if args.format in DECK_FORMATS and args.step:
        raise UsageError("--step picks one still; a deck takes a range with --steps 3-9")
    try:
        graph = _record(args)
        data = _export(args, graph, _read_program(args.file))
    except BadStep as exc:
        raise UsageError(str(exc)) from None
    except _Refused as exc:
        print(f"autograd-explorer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (LimitExceeded, LayoutUnavailable, RendererUnavailable) as exc:
        print(f"autograd-explorer: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    out = Path(args.output or filename(args.format, Path(args.file).stem, args.step))
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}") from None
    print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)
    if args.expanded or args.depth is not None:
        _say_folded(graph, args)
    if graph.error is not None:
        print(
            f"{graph.error.type} (line {graph.error.line}): {graph.error.message}", file=sys.stderr
        )
        return EXIT_USER_ERROR
    return EXIT_OK


def _seconds(text: str) -> float:
    """A step's time in seconds, 0.1 to 30."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 30:
        raise argparse.ArgumentTypeError("seconds per step must be between 0.1 and 30")
    return value


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of the Graph (the v1 contract)."""
    from app.contract_schema import graph_json_schema

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
    if settings.isolation and settings.jail and not (args.allow_root or settings.allow_root):
        from app.sandbox import jail

        if jail.runs_as_root() and jail.tasks_cgroup() is None:
            raise UsageError(
                "refusing to run as root: the kernel ignores the jail's thread limit for root, "
                "and no cgroup with pids.max could be made here to bound it instead; run as an "
                "unprivileged user, or pass --allow-root (AE_ALLOW_ROOT=true) to accept the risk"
            )
    print(f"Autograd Explorer on http://{args.host}:{args.port}", file=sys.stderr)
    config = server_config(create_app(settings), settings, host=args.host, port=args.port)
    uvicorn.Server(config).run()
    return EXIT_OK


def _depth(text: str) -> int:
    """A depth of expansion: a whole number from 0 to MAX_EXPAND_DEPTH."""
    from app.schemas import MAX_EXPAND_DEPTH

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_EXPAND_DEPTH:
        raise argparse.ArgumentTypeError(f"between 0 and {MAX_EXPAND_DEPTH}")
    return value


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
    serve.add_argument(
        "--allow-root",
        action="store_true",
        help="run as root even where no cgroup can bound the jail's threads",
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
    trace.add_argument(
        "--no-values",
        action="store_true",
        help="record the structure alone: names, ops, shapes, passes and the engine's order, "
        "without values, statistics or the training chart",
    )
    trace.set_defaults(run=cmd_trace)

    render = sub.add_parser(
        "render", help="export a program's graph for slides: a still, or a deck of every step"
    )
    render.add_argument("file", help="a .py program")
    render.add_argument(
        "--format",
        choices=["svg", "png", "dot", "html", *DECK_FORMATS],
        default="svg",
        help="a still (svg, png, dot, html) or a deck with a page per step (pdf, pptx, gif, mp4)",
    )
    render.add_argument("-o", "--output", help="output file (default: FILE[-STEP].FORMAT)")
    render.add_argument("--step", help="forward:N or backward:P:N (default: end of the last pass)")
    render.add_argument(
        "--steps", help="a deck's pages, counted from 1: 3-9, 5 or 4- (default: all)"
    )
    render.add_argument("--aspect", choices=["16:9", "4:3"], default="16:9", help="a deck's pages")
    render.add_argument(
        "--seconds", type=_seconds, default=1.5, help="each step's time in a GIF or MP4 (1.5)"
    )
    render.add_argument(
        "--max-pages", type=int, default=120, help="refuse a deck of more pages than this (120)"
    )
    render.add_argument("--theme", choices=["light", "dark"], default="light")
    render.add_argument("--lang", choices=["en", "zh"], default="en")
    render.add_argument(
        "--expanded",
        help="comma-separated groups to show expanded (modules, line:N, fold:PATH), or 'all'",
    )
    render.add_argument(
        "--depth",
        type=_depth,
        help="also expand every group this many levels deep (1: the outermost modules; "
        "a fold of repeats is a level)",
    )
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
