"""The JSON contract (v1) of the explorer as pydantic models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.player_step import STEP_SHAPE

SCHEMA_VERSION = 1
NON_FINITE = ("NaN", "Infinity", "-Infinity")  # how non-finite floats travel in JSON
EXPAND_ALL = "*"  # in a layout's `expanded`: every group
EXPAND_DEPTH_PREFIX = "depth:"  # 'depth:2': every group two levels deep (LayoutRequest.depth)
MAX_EXPAND_DEPTH = 64

Number = float | int | bool | str  # str carries "NaN" / "Infinity" / "-Infinity"
NestedValues = Number | list[Any]


class Contract(BaseModel):
    """Base of every model: non-finite floats travel as strings, unknown fields are refused."""

    model_config = ConfigDict(ser_json_inf_nan="strings", extra="forbid")


class Stats(Contract):
    """Summary statistics of a tensor's values."""

    min: float
    max: float
    mean: float
    std: float


class Histogram(Contract):
    """Value histogram: counts per bin between consecutive edges."""

    edges: list[float]
    counts: list[int]
    sample: int | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="present when the counts are of this many values spread evenly over a "
        "bigger tensor (edges still from its min and max); absent when every value is counted",
    )


class TensorData(Contract):
    """A tensor's values: all of them when small, otherwise statistics and a preview."""

    shape: list[int]
    dtype: str
    values: NestedValues | None = None
    stats: Stats | None = None
    heatmap: list[list[float]] | None = None
    histogram: Histogram | None = None


class SavedTensor(Contract):
    """One `_saved_*` attribute of a backward node, linked to a tensor node when it is one."""

    name: str
    tensor: str | None = None
    value: TensorData | None = None
    repr: str | None = None


class TensorNode(Contract):
    """A tensor that took part in autograd."""

    id: str
    kind: Literal["tensor"] = "tensor"
    label: str
    name: str | None = None
    line: int | None = Field(None, description="line of the variable binding that named it")
    shape: list[int]
    dtype: str
    device: str
    requires_grad: bool
    is_leaf: bool
    retains_grad: bool
    is_parameter: bool = False
    grad_fn: str | None = None
    version: int = 0
    value: TensorData
    grad: TensorData | None = None
    expression: str | None = Field(
        None,
        description="the program's source expression that made it, in full ('x * w'); the "
        "label of an unnamed tensor is this text shortened",
    )
    look: Literal["leaf", "param", "const", "tensor"] | None = Field(
        None,
        description="how the page draws it, set by the recorder and the server from the fields "
        "above: a leaf that requires grad ('param' if a module's parameter), a leaf that does "
        "not ('const'), or a computed tensor",
    )

    @model_validator(mode="after")
    def _set_look(self) -> TensorNode:
        """The look follows from the tensor's own fields, whatever the JSON said."""
        self.look = tensor_look(self.is_leaf, self.requires_grad, self.is_parameter)
        return self


class OpNode(Contract):
    """An autograd node, with the forward call that created it."""

    id: str
    kind: Literal["op"] = "op"
    label: str
    op: str
    grad_fn: str | None
    line: int | None = None
    module: str | None = None
    call: int | None = Field(None, description="index of the forward step that created it")
    sequence_nr: int | None = None
    variable: str | None = Field(None, description="the leaf an AccumulateGrad node feeds")
    created_by_pass: int | None = Field(
        None, description="index of the create_graph pass whose gradient graph holds it"
    )
    saved: list[SavedTensor] = Field(default_factory=list)
    constants: list[str] = Field(
        default_factory=list, description="number arguments of the forward call ('1' in w + 1)"
    )
    next: list[str | None] = Field(
        default_factory=list,
        description="op node of each next_functions entry, in the order of grad_inputs",
    )
    failed: bool = Field(
        False,
        description="the call that raised the program's error: drawn as a ghost, no autograd node",
    )
    look: Literal["op", "acc"] = Field(
        "op",
        description="how the page draws it, set by the recorder and the server from grad_fn: "
        "'acc' for an AccumulateGrad node beside its leaf, 'op' for every other",
    )

    @model_validator(mode="after")
    def _set_look(self) -> OpNode:
        """The look follows from the node's own fields, whatever the JSON said."""
        self.look = op_look(self.grad_fn)
        return self


Node = Annotated[TensorNode | OpNode, Field(discriminator="kind")]


TensorLook = Literal["leaf", "param", "const", "tensor"]
OpLook = Literal["op", "acc"]


def tensor_look(is_leaf: bool, requires_grad: bool, is_parameter: bool) -> TensorLook:
    """How a tensor is drawn: a computed tensor, a leaf with or without grad, a parameter."""
    if not is_leaf:
        return "tensor"
    if not requires_grad:
        return "const"
    return "param" if is_parameter else "leaf"


def op_look(grad_fn: str | None) -> OpLook:
    """How an op is drawn: an AccumulateGrad beside its leaf, or any other op."""
    return "acc" if grad_fn == "AccumulateGrad" else "op"


class Edge(Contract):
    """Forward data flow from source to target."""

    id: str
    source: str
    target: str


class ForwardStep(Contract):
    """One Python-level call that created autograd nodes."""

    node: str
    nodes: list[str] = Field(default_factory=list, description="every autograd node of the call")
    call: str
    inputs: list[str]
    outputs: list[str]
    line: int | None = None
    module: str | None = None
    after_pass: int = Field(0, description="number of backward passes that ran before this step")


class NoteMessage(Contract):
    """A note as a message key and parameters, so the page can say it in the reader's language."""

    key: str
    params: dict[str, str | int | None] = Field(default_factory=dict)
    text: str = Field(description="the same note in English, as in Graph.notes")


class RuleTerm(Contract):
    """The chain rule for one input of a backward step: local derivative times incoming grad."""

    slot: int = Field(description="index in grad_inputs")
    input: str | None = Field(None, description="tensor node of that input, when recorded")
    name: str = Field(description="the input's name in the program ('w')")
    local: str = Field(description="the local derivative ∂out/∂input ('x')")
    product: str = Field(description="the gradient as a formula ('grad_y · x')")
    numbers: str = Field(description="the formula with the recorded values or with shapes")
    value: TensorData | None = Field(
        None, description="the gradient the rule computed, given only where it disagrees"
    )
    agrees: bool | None = Field(
        None, description="whether value equals the recorded gradient (None: not computed)"
    )
    message: NoteMessage | None = Field(
        None, description="the term in words, as a message key the page translates"
    )


class GradientPart(Contract):
    """One gradient sent to a node where several meet."""

    source: str = Field(description="op node that sent it")
    value: TensorData


class GradientMeet(Contract):
    """Gradients from several consumers summed before a node runs."""

    parts: list[GradientPart]
    total: TensorData
    text: str = Field(description="'2 + 3 = 5'")


class Accumulation(Contract):
    """An AccumulateGrad step: leaf.grad += g, with the values before and after."""

    leaf: str
    name: str
    before: TensorData | None = Field(None, description="None when .grad was None")
    added: TensorData
    after: TensorData | None = None
    text: str = Field(description="'w.grad = None + 5 = 5'")


class StepRule(Contract):
    """Why a backward step's gradients have their values: its local derivative rule."""

    known: bool = Field(description="whether a rule for this grad_fn is known")
    grad_fn: str
    output: str = Field(description="name of the op's output ('y')")
    expression: str | None = Field(None, description="the forward expression ('y = x * w')")
    terms: list[RuleTerm] = Field(default_factory=list)
    meet: GradientMeet | None = None
    accumulate: Accumulation | None = None
    note: str | None = Field(None, description="why no formula is shown, in English")
    message: NoteMessage | None = Field(
        None, description="the note as a message key the page translates"
    )


class BackwardStep(Contract):
    """One autograd node as the engine ran it, with the gradients in and out."""

    node: str
    grad_inputs: list[TensorData | None]
    grad_outputs: list[TensorData | None]
    grad_before: TensorData | None = Field(
        None, description="the leaf's .grad just before an AccumulateGrad step ran"
    )
    rule: StepRule | None = Field(None, description="the local derivative rule of this step")


class BackwardPass(Contract):
    """One backward() / autograd.grad() call, in the engine's real order."""

    root: list[str]
    steps: list[BackwardStep]
    grads: dict[str, TensorData] = Field(default_factory=dict)
    kind: Literal["backward", "grad"] = "backward"
    line: int | None = None
    added: bool = Field(False, description="run by the explorer because the code never called it")
    create_graph: bool = False
    inputs: list[str] = Field(default_factory=list)
    results: dict[str, TensorData] = Field(
        default_factory=dict, description="gradients autograd.grad returned, by input"
    )
    tensor_grads: dict[str, TensorData] = Field(
        default_factory=dict, description="gradient that flowed through each non-leaf tensor"
    )


class ErrorInfo(Contract):
    """An exception raised by the user's code."""

    type: str
    message: str
    line: int | None = None
    node: str | None = Field(None, description="the ghost op node of the torch call that raised")
    pass_index: int | None = Field(
        None, description="the backward pass (from 0) that raised; it is not in `backward`"
    )
    roots: list[str] = Field(
        default_factory=list, description="the tensors whose backward pass raised (its roots)"
    )


class Series(Contract):
    """A scalar recorded once per backward pass, for plotting a training loop."""

    name: str
    kind: Literal["loss", "parameter"]
    values: list[float | str | None]


class Figure(Contract):
    """A matplotlib figure the program drew, as PNG."""

    number: int
    png: str = Field(description="base64-encoded PNG")
    width: int
    height: int


class Truncation(Contract):
    """How much of a long run was recorded in full."""

    passes_recorded: int
    passes_total: int


class LayoutNode(Contract):
    """A drawn box: one graph node, or a collapsed module / source line holding several."""

    id: str
    kind: Literal["tensor", "op", "module", "line", "fold"]
    label: str
    detail: str = Field("", description="second line: shape and dtype, grad_fn, or group size")
    x: float = Field(description="left edge, px")
    y: float = Field(description="top edge, px")
    width: float
    height: float
    members: list[str] = Field(default_factory=list, description="graph nodes inside a box")
    module: str | None = None
    parameters: int | None = Field(None, description="parameter count of a collapsed module")
    shape: list[int] | None = Field(None, description="output shape of a collapsed module")


class LayoutEdge(Contract):
    """A drawn edge between two layout nodes, with its SVG path."""

    id: str
    source: str
    target: str
    path: str
    members: list[str] = Field(default_factory=list, description="graph edges it stands for")


class LayoutCluster(Contract):
    """The frame of an expanded module."""

    id: str
    label: str
    title: str | None = Field(
        None,
        description="the frame's text where it is not the module's path: a fold's 'layers × 48'",
    )
    x: float
    y: float
    width: float
    height: float


class Layout(Contract):
    """Positions of the visible part of a graph, from graphviz dot."""

    width: float
    height: float
    expanded: list[str] = Field(default_factory=list)
    pass_index: int | None = Field(
        None, description="the backward pass whose part of the graph is laid out; None: all"
    )
    collapsible: list[str] = Field(
        default_factory=list, description="module / line groups that can be expanded or collapsed"
    )
    nodes: list[LayoutNode]
    edges: list[LayoutEdge]
    clusters: list[LayoutCluster] = Field(default_factory=list)
    node_of: dict[str, str] = Field(
        default_factory=dict, description="graph node id -> layout node id that shows it"
    )
    messages: list[NoteMessage] = Field(
        default_factory=list,
        description="notes on this view as message keys: an expansion too big, shown folded",
    )
    folds: dict[str, list[str]] = Field(
        default_factory=dict,
        description="each fold of repeats ('fold:layers.0') -> the groups it folds, in order",
    )


class BadgeSize(Contract):
    """The room the widest badge of one node takes at any step."""

    chars: int = Field(ge=0, description="most characters on one drawn line")
    lines: int = Field(ge=0, description="most lines, a value's and its gradient's added up")


class BadgeTrack(Contract):
    """Text beside nodes at each player step; the page and every export show exactly this.

    Every text arrives on the lines it is drawn on, separated by newlines."""

    forward: list[dict[str, str]] = Field(
        default_factory=list,
        description="per forward step: tensor id -> '= value' of what it computed (the first "
        "step also every leaf's); a value stays shown from its step on",
    )
    backward: list[list[dict[str, str]]] = Field(
        default_factory=list,
        description="per pass, per step: node id -> gradient text from that step on",
    )
    sizes: dict[str, BadgeSize] = Field(
        default_factory=dict,
        description="node id -> the widest badge any step shows under it (app/badges.py "
        "widest_badges): the layout reserves this room, the page fits the view to it",
    )


class Graph(Contract):
    """A recorded run: nodes, edges, forward steps, backward passes."""

    schema_version: int = SCHEMA_VERSION
    device: str
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    forward: list[ForwardStep] = Field(default_factory=list)
    backward: list[BackwardPass] = Field(default_factory=list)
    error: ErrorInfo | None = None
    layout: Layout | None = None
    series: list[Series] = Field(default_factory=list)
    truncated: Truncation | None = None
    stdout: str = ""
    notes: list[str] = Field(default_factory=list)
    messages: list[NoteMessage] = Field(
        default_factory=list, description="the notes as message keys with parameters"
    )
    badges: BadgeTrack | None = Field(None, description="filled by app/badges.py")
    modules: dict[str, str] = Field(
        default_factory=dict, description="module path -> class and sizes ('Linear(4→8)')"
    )
    module_paths: dict[str, str] = Field(
        default_factory=dict,
        description="module path -> that module's path in the program, from the variable that "
        "holds the outermost module ('0' -> 'model.0'); only where they differ",
    )
    figures: list[Figure] = Field(default_factory=list, description="matplotlib figures drawn")

    def to_networkx(self) -> Any:
        """The graph as a networkx.DiGraph (needs networkx, imported only here)."""
        from app.graph_networkx import to_networkx

        return to_networkx(self)


class TraceRequest(Contract):
    """Body of POST /api/v1/trace."""

    code: str
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    values: bool = Field(
        True,
        description="false: record the structure alone (names, ops, shapes, passes, the "
        "engine's order), without values, statistics, previews or the training chart",
    )


class RenderRequest(TraceRequest):
    """Body of POST /api/v1/render: the program, the view and the format to export."""

    format: Literal["svg", "png", "dot", "html", "pdf", "pptx", "gif", "mp4"] = Field(
        "svg",
        description="a still of one step (svg, png, dot, html) or a deck with a page, slide "
        "or frame per player step (pdf, pptx, gif, mp4)",
    )
    step: str | None = Field(None, pattern=STEP_SHAPE)
    theme: Literal["light", "dark"] = "light"
    lang: Literal["en", "zh"] = "en"
    expanded: list[str] = Field(default_factory=list, max_length=1000)
    steps: str | None = Field(
        None,
        pattern=r"^\d{1,6}(-\d{0,6})?$",
        description="a deck's pages, counted from 1: '3-9', '5' or '4-' (default: every step)",
    )
    aspect: Literal["16:9", "4:3"] = Field("16:9", description="a deck's page shape")
    seconds: float = Field(1.5, ge=0.1, le=30, description="each step's time in a GIF or MP4")
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="the lesson's name: the download is '<name>-<step>.<ext>' "
        "(default 'autograd-graph')",
    )

    @model_validator(mode="after")
    def _deck_or_still(self) -> RenderRequest:
        deck = self.format in ("pdf", "pptx", "gif", "mp4")
        if deck and self.step is not None:
            raise ValueError("step picks one still; a deck takes a range in steps ('3-9')")
        if not deck and self.steps is not None:
            raise ValueError("steps makes a deck: use format pdf, pptx, gif or mp4")
        return self


class LayoutRequest(TraceRequest):
    """Body of POST /api/v1/layout: the program, the modules to show expanded, and the pass."""

    expanded: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="groups to show open: module paths ('layers.0'), line groups ('line:9'), "
        "folds of repeats ('fold:layers.0'), or '*' for every group",
    )
    depth: int | None = Field(
        None,
        ge=0,
        le=MAX_EXPAND_DEPTH,
        description="also open every group this many levels deep (1: the outermost modules; "
        "a fold of repeats is a level)",
    )
    pass_index: int | None = Field(
        None, ge=0, le=10_000, description="lay out only this pass's part of a multi-pass graph"
    )
    aspect: float = Field(
        2.0,
        ge=0.25,
        le=8.0,
        allow_inf_nan=False,
        description="width / height of the frame the graph is shown in: a tall graph wraps "
        "into columns where that shows it larger",
    )

    @field_validator("expanded")
    @classmethod
    def _known_tokens(cls, expanded: list[str]) -> list[str]:
        for path in expanded:
            if path.startswith(EXPAND_DEPTH_PREFIX):  # said with `depth`, never spelled out
                raise ValueError(f"{path!r}: ask for a depth with the 'depth' field")
            if "*" in path and path != EXPAND_ALL:
                raise ValueError(f"{path!r}: '*' stands alone, for every group")
        return expanded

    def view_expanded(self) -> list[str]:
        """The expanded groups as the layout reads them: the depth as one more entry."""
        if self.depth is None:
            return list(self.expanded)
        return [*self.expanded, f"{EXPAND_DEPTH_PREFIX}{self.depth}"]


class ExampleSummary(Contract):
    """One gallery program, without its code."""

    id: str
    title_en: str
    title_zh: str
    lesson: str
    lesson_zh: str = Field("", description="the lesson's point in one sentence, in Chinese")


class Caption(Contract):
    """Narration of one player step, in English and Chinese."""

    en: str
    zh: str


class Example(ExampleSummary):
    """One gallery program with its code."""

    code: str
    captions: dict[str, Caption] = Field(
        default_factory=dict,
        description="narration by player step: 'forward:N' or 'backward:PASS:N'",
    )


class ErrorDetail(Contract):
    """The `detail` of an error response."""

    type: str
    message: str
    line: int | None = None
    col: int | None = None
    limit: str | None = None


class ErrorResponse(Contract):
    """Body of every 4xx/5xx answer of the API."""

    detail: ErrorDetail
