"""Exports of a recorded graph at one step: SVG, PNG and DOT through graphviz, and a
self-contained HTML player for offline slides."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from app.badges import badge_lines, badge_track, badges_at, widest_badges
from app.dot_run import INSTALL_HINT, DotLimits, LayoutUnavailable, dot_available, run_dot
from app.dot_source import DotStyle, to_dot
from app.graph_index import index_of
from app.layout_boxes import clip_label, text_width
from app.layout_groups import detached_edges
from app.page_render import rasterize, rsvg_available
from app.pass_view import layout_pass, pass_of_step, pass_subgraph, splits_by_pass
from app.player_step import BadStep, PlayerStep  # noqa: F401  (BadStep re-exported)
from app.resources import static_dir, templates_dir
from app.schemas import Caption, Graph, OpNode, TensorNode
from app.side_edges import add_side_edges
from app.step_caption import step_caption

Format = Literal["svg", "png", "dot", "html"]
FORMATS: dict[str, tuple[str, str]] = {  # format -> (content type, file extension)
    "svg": ("image/svg+xml", "svg"),
    "png": ("image/png", "png"),
    "dot": ("text/vnd.graphviz; charset=utf-8", "dot"),
    "html": ("text/html; charset=utf-8", "html"),
}
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
    "rule-view.js",
    "caption.js",
    "offline.js",
)

# The page's colours (static/css/explorer.css), so an export looks like the explorer.
THEMES = {
    "light": {
        "bg": "#f7f6f2",
        "fg": "#1f2328",
        "muted": "#5b6470",
        "edge": "#8a8f98",
        "grad": "#b3261e",
        "current": "#f2b400",
        "leaf": ("#e7f5ec", "#2e8b57"),
        "param": ("#e1f0f6", "#1f6f8b"),
        "const": ("#f1f2f3", "#7b8189"),  # the page's #8d949c is under 3:1 on paper
        "tensor": ("#ffffff", "#3b6fb6"),
        "op": ("#fff4e0", "#a86d14"),
        "module": ("#f1ecf9", "#6f51a6"),
    },
    "dark": {
        "bg": "#15171b",
        "fg": "#e6e6e6",
        "muted": "#9aa3ad",
        "edge": "#7d8590",
        "grad": "#ff8a7c",
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
# Past this many edges drawn beside the boxes (a loop's shared weights into each later
# iteration), drawing the PNG takes seconds per thousand and the file grows by megabytes.
MAX_SIDE_EDGES = 2_000
SIDE_EDGES_LEFT_OUT = {
    "en": "{n} edges of shared weights into the loop's later iterations are not drawn",
    "zh": "共享权重进入循环后续迭代的 {n} 条边未画出",
}
TITLES = {
    "en": ("forward step {i}/{n}", "backward pass {p} · step {i}/{n}"),
    "zh": ("前向 第 {i}/{n} 步", "第 {p} 次反向 · 第 {i}/{n} 步"),
}


@dataclass
class PictureState:
    """What a still picture shows at one step of the player."""

    title: str
    active: set[str] = field(default_factory=set)
    current: set[str] = field(default_factory=set)
    badges: dict[str, str] = field(default_factory=dict)  # graph node id -> text
    gradient_badges: set[str] = field(default_factory=set)


def picture_state(graph: Graph, step: str | None, lang: str = "en") -> PictureState:
    """The state at 'forward:N' or 'backward:P:N'; by default the end of the last pass."""
    step = step if step is not None else default_step(graph)
    if step is None:
        return PictureState(title="")
    at = PlayerStep.parse(step)
    index = at.index
    titles = TITLES.get(lang, TITLES["en"])
    view = PictureState(title="")
    if not at.backward:
        if index >= len(graph.forward):
            raise BadStep(f"the recording has {len(graph.forward)} forward steps")
        last_forward = index
    else:
        last_forward = len(graph.forward) - 1
    track = graph.badges or badge_track(graph)
    for i, forward in enumerate(graph.forward[: last_forward + 1]):
        view.active.update(forward.inputs, forward.nodes, forward.outputs, [forward.node])
        if not at.backward and i == last_forward:
            view.current.update(forward.nodes, forward.outputs, [forward.node])
            view.badges = badges_at(track, "forward", 0, index)
            view.title = titles[0].format(i=index + 1, n=len(graph.forward))
    if at.backward:
        pass_index = at.pass_index
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


TITLE_PT, DETAIL_PT, BADGE_PT, LEGEND_PT = 16, 14, 14, 14  # no export text under 14 pt
LINE_HEIGHT = 1.25
CAPTION_CHARS = 110  # a caption line of a still is cut after this many characters


@dataclass(frozen=True)
class Frame:
    """What an export draws around the graph: a still's title, caption and legend, or nothing
    (a deck page draws its own), and the direction of the ranks."""

    rankdir: str = "TB"
    title: bool = True
    legend: bool = True
    caption: tuple[str, ...] = ()


def _text_points(text: str, size: float, bold: bool = False) -> float:
    """Width in points of text at a font size, with room for DejaVu Sans' wider glyphs."""
    return text_width(text, size) * (1.12 if bold else 1.06)


def box_points(box: Any, reserve: tuple[int, int]) -> tuple[float, float]:
    """Width and height in points of a box with its title, detail and room for the widest
    badge any step shows: the same at every step, so every step has one layout."""
    chars, lines = reserve
    title = box.label if box.kind not in ("module", "line", "fold") else f"▸ {box.label}"
    width = max(
        _text_points(title, TITLE_PT, bold=True),
        _text_points(box.detail, DETAIL_PT),
        chars * BADGE_PT * 0.64,
    )
    height = (TITLE_PT + DETAIL_PT + lines * BADGE_PT) * LINE_HEIGHT
    return max(64.0, width + 28), height + 16


def _legend(colours: dict[str, Any], lang: str) -> str:
    """Rows of the legend, every swatch outlined so that none fades into the background."""
    rows = []
    for kind, text in LEGEND.get(lang, LEGEND["en"]):
        fill, line = colours[kind] if kind != "grad" else (colours["grad"], colours["grad"])
        dashed = ' style="dashed"' if kind == "const" else ""
        rows.append(
            f'<tr><td bgcolor="{fill}" color="{line}" border="2"{dashed} width="28" height="16">'
            f' </td><td align="left"><font point-size="{LEGEND_PT}">{html.escape(text)}</font>'
            "</td></tr>"
        )
    return "".join(rows)


@dataclass(frozen=True)
class StyledView:
    """The graphviz source of a view and the edges drawn beside its boxes, by dot name."""

    source: str
    side_edges: list[tuple[str, str]]


def styled_view(
    graph: Graph,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
    frame: Frame | None = None,
) -> StyledView:
    """Graphviz source of the graph at a step, drawn like the explorer, with a legend; and the
    edges dot is not given, which the SVG draws beside the boxes."""
    colours = THEMES.get(theme, THEMES["light"])
    frame = frame or Frame()
    view = picture_state(graph, step, lang)
    by_id = index_of(graph).nodes
    track = graph.badges or badge_track(graph)
    reserved = widest_badges(track)

    def node_attributes(box: Any) -> str:
        node = by_id.get(box.id)
        kind = _kind(node)
        fill, line = colours[kind]
        active = node is None or box.id in view.active or not view.active
        text_colour = colours["fg"] if active else colours["muted"]
        title = html.escape(box.label if node is not None else f"▸ {box.label}")
        detail = html.escape(box.detail)
        rows = (
            f'<font point-size="{TITLE_PT}" color="{text_colour}"><b>{title}</b></font><br/>'
            f'<font point-size="{DETAIL_PT}" color="{colours["muted"]}">{detail}</font>'
        )
        failed = isinstance(node, OpNode) and node.failed  # the call that raised the error
        chars, count = reserved.get(box.id, (0, 0))
        badge = view.badges.get(box.id)
        lines = badge_lines(badge) if badge else []
        red = box.id in view.gradient_badges or failed
        colour = colours["grad"] if red else colours["fg"]
        for i in range(count):  # blank lines keep the box's text where it is at every step
            text = html.escape(clip_label(lines[i])) if i < len(lines) else " "
            rows += f'<br/><font point-size="{BADGE_PT}" color="{colour}">{text}</font>'
        width, height = box_points(box, (chars, count))
        style = "filled,rounded" if kind != "const" and not failed else "filled,rounded,dashed"
        current = box.id in view.current or any(m in view.current for m in box.members)
        classes = []  # read back from the SVG: ops become pills, decks follow the current step
        if kind == "op" and node is not None:
            classes.append("op")
            if node.variable:
                classes.append("acc")
                style = "filled,rounded,dashed"
        if current:
            classes.append("current")
        if failed:
            fill, line = colours["bg"], colours["grad"]
        pen = "4" if current else ("2.6" if kind == "param" else "1.6")
        outline = colours["current"] if current else line
        if not active:  # not reached yet: faded fill and border, dashed, as on the page
            fill, outline, style = f"{fill}59", f"{outline}8c", "filled,rounded,dashed"
        extra = f', class="{" ".join(classes)}"' if classes else ""
        return (
            f'label=<{rows}>, shape=box, style="{style}", fillcolor="{fill}", '
            f'color="{outline}", penwidth={pen}, fontcolor="{text_colour}", fixedsize=true, '
            f"width={width / 72:.3f}, height={height / 72:.3f}{extra}"
        )

    label_rows = ""
    if frame.title and view.title:
        label_rows += (
            f'<tr><td colspan="2" align="left"><font point-size="{TITLE_PT}"><b>'
            f"{html.escape(clip_label(view.title))}</b></font></td></tr>"
        )
    for text in frame.caption:
        label_rows += (
            f'<tr><td colspan="2" align="left"><font point-size="{DETAIL_PT}">'
            f"{html.escape(clip_label(text, CAPTION_CHARS))}</font></td></tr>"
        )
    if frame.legend:
        label_rows += (
            f'<tr><td colspan="2" align="left"><table border="0" cellspacing="4">'
            f"{_legend(colours, lang)}</table></td></tr>"
        )
    label = (
        f'labelloc=b, labeljust=l, label=<<table border="0" cellspacing="4">{label_rows}</table>>, '
        if label_rows
        else ""
    )
    style = DotStyle(
        header=(
            f"graph [rankdir={frame.rankdir}, nodesep=0.3, ranksep=0.45, pad=0.3, "
            f'bgcolor="{colours["bg"]}", fontname="DejaVu Sans, WenQuanYi Micro Hei", '
            f'fontsize={DETAIL_PT}, fontcolor="{colours["fg"]}", {label}];',
            'node [fontname="DejaVu Sans, WenQuanYi Micro Hei", margin="0.12,0.06"];',
            f'edge [color="{colours["edge"]}", arrowsize=0.7, penwidth=1.3];',
        ),
        node_attributes=node_attributes,
        cluster_attributes=f'margin=12; style="dashed,rounded"; color="{colours["module"][1]}"; '
        f'fontcolor="{colours["module"][1]}"; fontsize={DETAIL_PT};',
    )
    shown = pass_subgraph(graph, pass_of_step(step, graph))
    source, boxes, units = to_dot(shown, set(expanded), style, limits)
    side = [
        (boxes[a].dot_name, boxes[b].dot_name)
        for a, b in sorted(detached_edges(shown, units))
        if a in boxes and b in boxes
    ]
    if len(side) > MAX_SIDE_EDGES:  # said under the drawing instead (a later label wins)
        note = SIDE_EDGES_LEFT_OUT.get(lang, SIDE_EDGES_LEFT_OUT["en"]).format(n=f"{len(side):,}")
        label_rows += (
            f'<tr><td colspan="2" align="left"><font point-size="{DETAIL_PT}">'
            f"{html.escape(note)}</font></td></tr>"
        )
        table = f'<table border="0" cellspacing="4">{label_rows}</table>'
        relabel = f"  graph [labelloc=b, labeljust=l, label=<{table}>];\n"
        source = source[: source.rindex("}")] + relabel + "}"
        side = []
    return StyledView(source, side)


_OP_BOX = re.compile(
    r'(<g id="[^"]*" class="node op\b[^"]*">\s*<title>[^<]*</title>\s*)'
    r'<path ([^>]*?)d="([^"]*)"\s*/>'
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def pill_ops(svg: str) -> str:
    """Ops drawn as the page draws them: boxes with fully rounded ends."""

    def pill(match: re.Match[str]) -> str:
        numbers = [float(v) for v in _NUMBER.findall(match.group(3))]
        xs, ys = numbers[0::2], numbers[1::2]
        if not xs or not ys:
            return match.group(0)
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        r = (y1 - y0) / 2
        return (
            f'{match.group(1)}<rect {match.group(2)}x="{x0:.2f}" y="{y0:.2f}" '
            f'width="{x1 - x0:.2f}" height="{y1 - y0:.2f}" rx="{r:.2f}" ry="{r:.2f}"/>'
        )

    return _OP_BOX.sub(pill, svg)


def still_frame(
    graph: Graph, step: str | None, lang: str, narration: dict[str, Caption] | None
) -> Frame:
    """A still's frame: title, the step's caption (narration and chain rule) and the legend."""
    if step is None:
        step = default_step(graph)
    caption = step_caption(graph, step, lang, narration).lines() if step else []
    return Frame(caption=tuple(caption))


def default_step(graph: Graph) -> str | None:
    """The step a still shows by default: the end of the last pass, or of the forward."""
    if graph.backward:
        last = len(graph.backward) - 1
        return str(PlayerStep("backward", len(graph.backward[last].steps) - 1, last))
    if graph.forward:
        return str(PlayerStep("forward", len(graph.forward) - 1))
    return None


def graph_svg(
    graph: Graph,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
    frame: Frame | None = None,
) -> bytes:
    """SVG of the graph at a step, its ops drawn as pills, a loop's shared weights' edges into
    later iterations drawn beside the boxes as on the page."""
    view = styled_view(graph, expanded, step, theme, lang, limits, frame)
    svg = run_dot(view.source, "svg", limits).decode("utf-8", "replace")
    colour = THEMES.get(theme, THEMES["light"])["edge"]
    return pill_ops(add_side_edges(svg, view.side_edges, colour)).encode("utf-8")


def render_graphviz(
    graph: Graph,
    fmt: Format,
    expanded: list[str],
    step: str | None,
    theme: str,
    lang: str,
    limits: DotLimits | None = None,
    narration: dict[str, Caption] | None = None,
) -> bytes:
    """SVG, PNG or DOT bytes of the graph at a step, with the step's caption and the legend."""
    frame = still_frame(graph, step, lang, narration)
    if fmt == "dot":
        return styled_view(graph, expanded, step, theme, lang, limits, frame).source.encode(
            "utf-8", "replace"
        )
    if fmt == "png" and not rsvg_available():  # graphviz's own PNG: ops drawn as boxes
        source = styled_view(graph, expanded, step, theme, lang, limits, frame).source
        return run_dot(
            source.replace("digraph G {", "digraph G {\n  graph [dpi=144];", 1), "png", limits
        )
    svg = graph_svg(graph, expanded, step, theme, lang, limits, frame)
    if fmt == "png":
        return rasterize(svg, limits)
    return svg


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
    narration: dict[str, Caption] | None = None,
) -> bytes:
    """One HTML file with the graph, styles and player inline, that plays with no network, its
    caption (narration and chain rule) under the graph as on the page."""
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
        css="\n".join(
            (static_dir() / "css" / name).read_text(encoding="utf-8")
            for name in ("explorer.css", "chain-rule.css")  # the caption's look too
        ),
        graph_json=script_json(json.loads(graph.model_dump_json())),
        modules_json=script_json({"order": list(PLAYER_MODULES), "sources": modules}),
        settings_json=script_json(
            {
                "step": step,
                "lang": lang,
                "layouts": layouts,
                "narration": {k: v.model_dump() for k, v in (narration or {}).items()},
            }
        ),
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
    narration: dict[str, Caption] | None = None,
) -> bytes:
    """The graph exported in a format; LayoutUnavailable without graphviz, BadStep for bad steps.

    narration: the lesson's words per step, shown in the caption with the chain rule."""
    expanded = list(expanded or [])
    if graph.badges is None and not splits_by_pass(graph):  # one track for the whole export
        graph = graph.model_copy(update={"badges": badge_track(graph)})
    picture_state(graph, step, lang)  # validates the step before any work
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    if fmt == "html":
        return render_html(graph, expanded, step, theme, lang, limits, narration)
    return render_graphviz(graph, fmt, expanded, step, theme, lang, limits, narration)


def filename(extension: str, name: str | None = None, step: str | None = None) -> str:
    """Download name of an export, as the page names it: 'shared_weight-backward-1-3.svg' for
    step backward:1:2 of lesson shared_weight (the step counted from 1)."""
    base = re.sub(r"[^\w-]+", "_", name or "", flags=re.ASCII)[:80] or "autograd-graph"
    if step and PlayerStep.is_step(step):
        at = PlayerStep.parse(step)
        numbers = [at.pass_index, at.index + 1] if at.backward else [at.index + 1]
        base += "-" + "-".join([at.phase, *map(str, numbers)])
    return f"{base}.{extension}"
