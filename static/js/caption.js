// The caption under the player: the lesson's narration of this step and, going backward, its rule.
import { el } from "./dom.js";
import { renderRule } from "./rule-view.js";
import { formatStep } from "./state.js";

export class Caption {
  constructor(container) {
    this.container = container;
  }

  // position: the player's; narration: {"backward:0:3": {en, zh}} or null; lang: "en" | "zh".
  show({ graph, position, narration, lang, t }) {
    const parts = [];
    const key = formatStep(position);
    const told = key && narration?.[key];
    if (told)
      parts.push(
        el(
          "p",
          {
            class: "caption-text",
            "data-testid": "caption-text",
            lang: lang === "zh" ? "zh-CN" : "en",
          },
          told[lang] ?? told.en,
        ),
      );
    if (position?.phase === "backward") {
      const step = graph?.backward[position.pass]?.steps[position.index];
      const rule = renderRule(step?.rule, t);
      if (rule) parts.push(rule);
    }
    this.container.replaceChildren(...parts);
    this.container.hidden = parts.length === 0;
    this.container.dataset.step = key ?? "";
  }
}
