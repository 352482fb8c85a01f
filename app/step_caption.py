"""The caption of a player step as plain text: the lesson's narration and the chain rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.player_step import PlayerStep
from app.schemas import Caption, Graph, StepRule

# What caption.js and rule-view.js write around a rule (static/js/i18n.js has the same words).
WORDS = {
    "en": {
        "meet": "gradients meet at {name}",
        "no_rule": "No rule for {fn}: its gradients are shown as recorded.",
    },
    "zh": {
        "meet": "梯度在 {name} 处汇合",
        "no_rule": "{fn} 没有对应的求导法则:梯度按记录值显示。",
    },
}


@dataclass
class StepCaption:
    """What the caption under the player says at one step."""

    narration: str = ""  # the lesson's words for this step, when the program is a lesson
    rule: list[str] = field(default_factory=list)  # the chain rule, one formula a line

    def lines(self) -> list[str]:
        """Narration first, then the rule, as the page stacks them."""
        return ([self.narration] if self.narration else []) + self.rule


def narration_for(code: str) -> dict[str, Caption]:
    """The gallery's narration when code is one of its lessons unchanged, else nothing."""
    from app.lessons import all_lessons

    wanted = code.strip()
    for example in all_lessons():
        if example.code.strip() == wanted:
            return example.captions
    return {}


def lesson_of(code: str) -> str | None:
    """The gallery id of a lesson's unchanged code, else None."""
    from app.lessons import all_lessons

    wanted = code.strip()
    for example in all_lessons():
        if example.code.strip() == wanted:
            return example.id
    return None


def rule_lines(rule: StepRule | None, lang: str = "en") -> list[str]:
    """A rule as the caption typesets it: expression, ∂out/∂in = local and the product per input,
    the meeting gradients, the .grad update."""
    if rule is None:
        return []
    words = WORDS.get(lang, WORDS["en"])
    lines: list[str] = []
    if rule.expression:
        lines.append(rule.expression)
    for term in rule.terms:
        lines.append(
            f"∂{rule.output}/∂{term.name} = {term.local}    "
            f"grad_{term.name} = {term.product} = {term.numbers}"
        )
    if rule.meet is not None:
        lines.append(f"{words['meet'].format(name=rule.output)}: {rule.meet.text}")
    if rule.accumulate is not None:
        lines.append(rule.accumulate.text)
    if not rule.known:
        lines.append(words["no_rule"].format(fn=rule.grad_fn))
    return lines


def step_caption(
    graph: Graph, step: str | None, lang: str = "en", narration: dict[str, Caption] | None = None
) -> StepCaption:
    """The caption at 'forward:N' or 'backward:P:N' (a step already checked against the graph)."""
    caption = StepCaption()
    if not step:
        return caption
    told = (narration or {}).get(step)
    if told is not None:
        caption.narration = told.zh if lang == "zh" and told.zh else told.en
    at = PlayerStep.parse(step)
    if at.backward:
        record = graph.backward[at.pass_index]
        caption.rule = rule_lines(record.steps[at.index].rule, lang)
    return caption
