"""Exports of a recorded graph at one step: SVG, PNG and DOT through graphviz, and a
self-contained HTML player for offline slides."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from app.badges import badge_track, badges_at
from app.layout import (  # noqa: F401  (re-exported for callers)
    INSTALL_HINT,
    DotLimits,
    DotStyle,
    LayoutUnavailable,
    clip_label,
    dot_available,
    layout_graph,
    run_dot,
    to_dot,
)
from app.pass_view import layout_pass, pass_of_step, pass_subgraph, splits_by_pass
from app.resources import static_dir, templates_dir
from app.schemas import Graph, OpNode, TensorNode

Format = Literal["svg", "png", "dot", "html"]
FORMATS: dict[str, tuple[str, str]] = {  # format -> (content type, file extension)
    "svg": ("image/svg+xml", "svg"),
    "png": ("image/png", "png"),
    "dot": ("text/vnd.graphviz; charset=utf-8", "dot"),
    "html": ("text/html; charset=utf-8", "html"),
}
STEP_PATTERN = re.compile(r"^(forward:\d{1,9}|backward:\d{1,9}:\d{1,9})$")  # no huge ints
# Modules of the offline player, dependencies first; imports between them are rewritten.
PLAYER_MODULES = (
    "dom.js",
    "format.js",
    "i18n.js",
    "state.js",
    "timeline.js",
    "graph-view.js",
    "player.js",
    "standalone.js",
    "offline.js",
)

THEMES = {
    "light": {
        "bg": "#f7f6f2",
        "fg": "#1f2328",
        "muted": "#6b7280",
        "edge": "#8a8f98",
        "grad": "#d6463a",
        "current": "#f2b400",
        "leaf": ("#e7f5ec", "#2e8b57"),
        "param": ("#e1f0f6", "#1f6f8b"),
        "const": ("#f1f2f3", "#8d949c"),
        "tensor": ("#ffffff", "#3b6fb6"),
        "op": ("#fff4e0", "#b7791f"),
        "module": ("#f1ecf9", "#7a5cb0"),
    },
    "dark": {
        "bg": "#15171b",
        "fg": "#e6e6e6",
        "muted": "#9aa3ad",
        "edge": "#7d8590",
        "grad": "#ff7a6b",
        "current": "#f2b400",
        "leaf": ("#17301f", "#5cc98a"),
        "param": ("#112b35", "#4fb3d6"),
        "const": ("#262a30", "#8d949c"),
        "tensor": ("#1e2127", "#7aa7e8"),
        "op": ("#33270f", "#e0a64a"),
        "module": ("#2a2238", "#b39ae0"),
    },
}
LEGEND = {
    "en": [
        ("leaf", "leaf, requires grad"),
        ("param", "parameter"),
        ("const", "leaf, no grad"),
        ("tensor", "non-leaf tensor"),
        ("op", "op · grad_fn"),
        ("module", "module"),
        ("grad", "∂ gradient"),
    ],
    "zh": [
        ("leaf", "叶子节点,需要梯度"),
        ("param", "参数"),
        ("const", "叶子节点,不需要梯度"),
        ("tensor", "非叶子张量"),
        ("op", "运算 · grad_fn"),
        ("module", "模块"),
        ("grad", "∂ 梯度"),
    ],
}
TITLES = {
    "en": ("forward step {i}/{n}", "backward pass {p} · step {i}/{n}"),
    "zh": ("前向 第 {i}/{n} 步", "第 {p} 次反向 · 第 {i}/{n} 步"),
}


class BadStep(ValueError):
    """A --step that is malformed or outside the recording."""


@dataclass
class StepView:
    """What a still picture shows at one step of the player."""

    title: str
    active: set[str] = field(default_factory=set)
    current: set[str] = field(default_factory=set)
    badges: dict[str, str] = field(default_factory=dict)  # graph node id -> text
    gradient_badges: set[str] = field(default_factory=set)


def step_view(graph: Graph, step: str | None, lang: str = "en") -> StepView:
    """The state at 'forward:N' or 'backward:P:N'; by default the end of the last pass."""
    if step is None:
        if graph.backward:
            last = len(graph.backward) - 1
            step = f"backward:{last}:{len(graph.backward[last].steps) - 1}"
        elif graph.forward:
            step = f"forward:{len(graph.forward) - 1}"
        else:
            return StepView(title="")
    if not STEP_PATTERN.match(step):
        raise BadStep(f"step must look like forward:N or backward:P:N, not {step!r}")
    parts = [int(p) for p in step.split(":")[1:]]
    titles = TITLES.get(lang, TITLES["en"])
    view = StepView(title="")
    if step.startswith("forward"):
        (index,) = parts
        if index >= len(graph.forward):
            raise BadStep(f"the recording has {len(graph.forward)} forward steps")
        last_forward = index
    else:
        last_forward = len(graph.forward) - 1
    track = graph.badges or badge_track(graph)
    for i, forward in enumerate(graph.forward[: last_forward + 1]):
        view.active.update(forward.inputs, forward.nodes, forward.outputs, [forward.node])
        if step.startswith("forward") and i == last_forward:
            view.current.update(forward.nodes, forward.outputs, [forward.node])
            view.badges = badges_at(track, "forward", 0, index)
            view.title = titles[0].format(i=index + 1, n=len(graph.forward))
    if step.startswith("backward"):
        pass_index, index = parts
        if pass_index >= len(graph.backward) or index >= len(graph.backward[pass_index].steps):
            raise BadStep("the step is outside the recorded backward passes")
        record = graph.backward[pass_index]
        ran = record.steps[: index + 1]
        view.current.add(ran[-1].node)
        for n in graph.nodes:
            if (
                isinstance(n, OpNode)
                and n.created_by_pass is not None
                and n.created_by_pass < pass_index
            ):
                view.active.add(n.id)
        view.active.update(s.node for s in ran)
        view.badges = badges_at(track, "backward", pass_index, index)
        view.gradient_badges = {k for k, text in view.badges.items() if text.startswith("∂")}
        view.title = titles[1].format(p=pass_index + 1, i=index + 1, n=len(record.steps))
    for n in graph.nodes:  # an AccumulateGrad shows with its leaf
        if isinstance(n, OpNode) and n.variable in view.active:
            view.active.add(n.id)
    return view


def _kind(node: TensorNode | OpNode | None) -> str:
    if node is None:
        return "module"
    if isinstance(node, OpNode):
        return "op"
    if not node.is_leaf:
        return "tensor"
    if not node.requires_grad:
        return "const"
    return "param" if node.is_parameter else "leaf"


def styled_dot(
    graph: Graph,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
) -> str:
    """Graphviz source of the graph at a step, coloured like the explorer, with a legend."""
    colours = THEMES.get(theme, THEMES["light"])
    view = step_view(graph, step, lang)
    by_id = {n.id: n for n in graph.nodes}

    def node_attributes(box: Any) -> str:
        node = by_id.get(box.id)
        kind = _kind(node)
        fill, line = colours[kind]
        title = html.escape(box.label if node is not None else f"▸ {box.label}")
        detail = html.escape(box.detail)
        rows = (
            f'<b>{title}</b><br/><font point-size="12" color="{colours["muted"]}">{detail}</font>'
        )
        failed = isinstance(node, OpNode) and node.failed  # the call that raised the error
        badge = view.badges.get(box.id)
        if badge:
            red = box.id in view.gradient_badges or failed
            colour = colours["grad"] if red else colours["fg"]
            badge = "<br/>".join(html.escape(clip_label(line)) for line in badge.split("\n"))
            rows += f'<br/><font point-size="13" color="{colour}">{badge}</font>'
        active = node is None or box.id in view.active or not view.active
        shape = "box"
        style = "filled,rounded" if kind != "const" and not failed else "filled,rounded,dashed"
        if failed:
            fill, line = colours["bg"], colours["grad"]
        pen = "3.5" if box.id in view.current else ("2.6" if kind == "param" else "1.6")
        colour = colours["current"] if box.id in view.current else line
        opacity = "" if active else "66"
        return (
            f'label=<{rows}>, shape={shape}, style="{style}", fillcolor="{fill}{opacity}", '
            f'color="{colour}{opacity}", penwidth={pen}, fontcolor="{colours["fg"]}{opacity}"'
        )

    legend_rows = "".join(
        f'<tr><td bgcolor="{colours[k][0] if k != "grad" else colours["grad"]}" '
        f'color="{colours[k][1] if k != "grad" else colours["grad"]}" width="24"> </td>'
        f'<td align="left">{html.escape(text)}</td></tr>'
        for k, text in LEGEND.get(lang, LEGEND["en"])
    )
    title_row = (
        f'<tr><td colspan="2" align="left"><b>{html.escape(clip_label(view.title))}</b></td></tr>'
        if view.title
        else ""
    )
    style = DotStyle(
        header=(
            f'graph [rankdir=TB, nodesep=0.3, ranksep=0.45, pad=0.3, bgcolor="{colours["bg"]}", '
            f'fontname="DejaVu Sans", fontsize=14, fontcolor="{colours["fg"]}", labelloc=b, '
            f'labeljust=l, label=<<table border="0" cellspacing="4">'
            f"{title_row}{legend_rows}</table>>];",
            'node [fontname="DejaVu Sans, WenQuanYi Micro Hei", fontsize=14, margin="0.15,0.06"];',
            f'edge [color="{colours["edge"]}", arrowsize=0.7, penwidth=1.3];',
        ),
        node_attributes=node_attributes,
        cluster_attributes=f'margin=12; style="dashed,rounded"; color="{colours["module"][1]}"; '
        f'fontcolor="{colours["module"][1]}";',
    )
    shown = pass_subgraph(graph, pass_of_step(step, graph))
    source, _, _ = to_dot(shown, set(expanded), style, limits)
    return source


def render_graphviz(
    graph: Graph,
    fmt: Format,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
) -> bytes:
    """SVG, PNG or DOT bytes of the graph at a step."""
    source = styled_dot(graph, expanded, step, theme, lang, limits)
    if fmt == "dot":
        return source.encode("utf-8", "replace")
    if fmt == "png":
        source = source.replace("digraph G {", "digraph G {\n  graph [dpi=144];", 1)
        return run_dot(source, "png", limits)
    return run_dot(source, "svg", limits)


# Characters that could end or comment out a <script> element, or end a line in old parsers.
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value: Any) -> str:
    """JSON that is inert inside a <script> element for any string it holds."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def render_html(
    graph: Graph,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
) -> bytes:
    """One HTML file with the graph, styles and player inline, that plays with no network."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    shown = pass_of_step(step, graph) if splits_by_pass(graph) else None
    layout = graph.layout
    if layout is None or sorted(layout.expanded) != sorted(expanded) or layout.pass_index != shown:
        graph = graph.model_copy(update={"layout": layout_pass(graph, expanded, shown, limits)})
    if graph.badges is None:
        graph = graph.model_copy(update={"badges": badge_track(graph)})
    layouts: dict[int, Any] = {}  # the offline pass picker redraws from these
    if shown is not None:
        for index in range(len(graph.backward)):
            if index == shown:
                layout = graph.layout
            else:
                layout = layout_pass(graph, expanded, index, limits)
            layouts[index] = json.loads(layout.model_dump_json()) if layout else None
    scripts = static_dir() / "js"
    modules = {name: (scripts / name).read_text(encoding="utf-8") for name in PLAYER_MODULES}
    env = Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=select_autoescape())
    page = env.get_template("export.html").render(
        css=(static_dir() / "css" / "explorer.css").read_text(encoding="utf-8"),
        graph_json=script_json(json.loads(graph.model_dump_json())),
        modules_json=script_json({"order": list(PLAYER_MODULES), "sources": modules}),
        settings_json=script_json({"step": step, "lang": lang, "layouts": layouts}),
        theme=theme,
        lang="zh-CN" if lang == "zh" else "en",
    )
    return page.encode("utf-8", "replace")


def render(
    graph: Graph,
    fmt: Format,
    expanded: list[str] | None = None,
    step: str | None = None,
    theme: str = "light",
    lang: str = "en",
    limits: DotLimits | None = None,
) -> bytes:
    """The graph exported in a format; LayoutUnavailable without graphviz, BadStep for bad steps."""
    expanded = list(expanded or [])
    if graph.badges is None and not splits_by_pass(graph):  # one track for the whole export
        graph = graph.model_copy(update={"badges": badge_track(graph)})
    step_view(graph, step, lang)  # validates the step before any work
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    if fmt == "html":
        return render_html(graph, expanded, step, theme, lang, limits)
    return render_graphviz(graph, fmt, expanded, step, theme, lang, limits)


def filename(fmt: str) -> str:
    """Download name of an export."""
    return f"autograd-graph.{FORMATS[fmt][1]}"
