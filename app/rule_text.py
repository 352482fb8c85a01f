"""The words of the chain-rule captions, as message keys with English and Chinese texts."""

from __future__ import annotations

from app.schemas import NoteMessage

# key -> (English, Chinese); the page holds the same texts under "rule.<key>" in static/js/i18n.js
RULE_MESSAGES: dict[str, tuple[str, str]] = {
    "unknown": (
        "No rule for {fn}: its gradients are shown as recorded.",
        "{fn} 没有对应的求导法则:梯度按记录值显示。",
    ),
    "notApplied": (
        "The rule of {fn} could not be applied to the recorded values: its gradients are shown "
        "as recorded.",
        "{fn} 的求导法则无法用于记录的数值:梯度按记录值显示。",
    ),
    "oneHot": (
        "one_hot({target}) is 1 at each row's target class and 0 elsewhere: only the target's "
        "score gets a gradient, -1/{n} of the loss's.",
        "one_hot({target}) 在每一行的目标类别处为 1,其余为 0:只有目标类别的得分得到梯度,"
        "大小是损失梯度的 -1/{n}。",
    ),
    "logSoftmax": (
        "Every score of a row moves every output of that row: the Jacobian is "
        "I - 1·softmax({x})ᵀ, so each score gets its own gradient minus softmax({x}) times the "
        "row's total gradient.",
        "同一行的每个得分都会影响该行的每个输出:雅可比矩阵是 I - 1·softmax({x})ᵀ,"
        "所以每个得分的梯度等于它自己的梯度减去 softmax({x}) 乘以该行梯度之和。",
    ),
    "softmax": (
        "Every input of a row moves every output of that row: the Jacobian is "
        "diag({y}) - {y}·{y}ᵀ, not only its diagonal.",
        "同一行的每个输入都会影响该行的每个输出:雅可比矩阵是 diag({y}) - {y}·{y}ᵀ,"
        "而不只是它的对角线。",
    ),
    "select": (
        "The gradient goes back to index {index} of dimension {dim}; every other element of "
        "{x} gets 0.",
        "梯度回到第 {dim} 维的下标 {index} 处;{x} 的其他元素得到 0。",
    ),
    "slice": (
        "The gradient goes back into the slice; every other element of {x} gets 0.",
        "梯度回到切片所在的位置;{x} 的其他元素得到 0。",
    ),
    "index": (
        "The gradient goes back to the indexed elements (added up where an index repeats); "
        "every other element of {x} gets 0.",
        "梯度回到被索引的元素(同一下标出现多次时相加);{x} 的其他元素得到 0。",
    ),
    "expand": (
        "expand copied {x} without copying memory: the copies' gradients are added up, back to "
        "the shape {sizes}.",
        "expand 只是复制了 {x} 的视图:各个副本的梯度相加,变回形状 {sizes}。",
    ),
    "broadcast": (
        "Broadcasting repeated {x} to the shape of the result: the gradients of the repeats are "
        "added up, back to {x}'s shape.",
        "广播把 {x} 重复成结果的形状:各个重复的梯度相加,变回 {x} 的形状。",
    ),
}


def rule_message(key: str, **params: str | int | None) -> NoteMessage:
    """A rule's words as a message key, its parameters and its English text."""
    return NoteMessage(key=key, params=params, text=message_text(key, params, "en"))


def message_text(key: str, params: dict[str, str | int | None], lang: str = "en") -> str:
    """The text of a rule message in a language ('en' or 'zh'), English when unknown."""
    english, chinese = RULE_MESSAGES[key]
    template = chinese if lang == "zh" else english
    return template.format(
        **{name: "" if value is None else value for name, value in params.items()}
    )
