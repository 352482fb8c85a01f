// The player bar: step back / play / step forward, start / end, speed, pass picker, keyboard.
import { el } from "./dom.js";

// Whether keys pressed here type text (the code editor, any field): those keys are never the player's.
export function typesText(target) {
  if (!(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  return Boolean(target.closest(".cm-editor, input, textarea, select, [contenteditable]"));
}

export class Player {
  constructor(container, { onPosition = () => {}, onPass = () => {}, t = (k) => k } = {}) {
    this.container = container;
    this.onPosition = onPosition;
    this.onPass = onPass;
    this.t = t;
    this.positions = [];
    this.index = 0;
    this.playToken = null;
    this.build();
    document.addEventListener("keydown", (event) => this.keydown(event));
  }

  button(testid, label, text, action) {
    return el(
      "button",
      {
        type: "button",
        "data-testid": testid,
        "data-i18n-label": label,
        "aria-label": this.t(label),
        title: this.t(label),
        onclick: action,
      },
      text,
    );
  }

  build() {
    this.toStart = this.button("to-start", "toStart", "|◁", () => this.go(0));
    this.back = this.button("step-back", "stepBack", "◁", () => this.step(-1));
    this.playButton = this.button("play", "play", "▶", () => this.toggle());
    this.forward = this.button("step-forward", "stepForward", "▷", () => this.step(1));
    this.toEnd = this.button("to-end", "toEnd", "▷|", () => this.go(this.positions.length - 1));
    this.speed = el(
      "select",
      {
        "data-testid": "speed",
        "data-i18n-label": "speed",
        "aria-label": this.t("speed"),
        title: this.t("speed"),
      },
      ...[0.5, 1, 2, 4].map((s) => el("option", { value: s, selected: s === 1 }, `${s}×`)),
    );
    this.passPicker = el("select", {
      "data-testid": "pass-picker",
      "data-i18n-label": "passPicker",
      "aria-label": this.t("passPicker"),
      title: this.t("passPicker"),
      onchange: () => this.onPass(Number(this.passPicker.value)),
    });
    this.label = el("span", {
      class: "position",
      "data-testid": "position",
      "aria-live": "polite",
    });
    this.range = el("input", {
      type: "range",
      min: 0,
      max: 0,
      value: 0,
      "data-i18n-label": "positionLabel",
      "aria-label": this.t("positionLabel"),
      title: this.t("positionLabel"),
      "data-testid": "scrubber",
      oninput: () => this.go(Number(this.range.value)),
    });
    this.container.append(
      this.toStart,
      this.back,
      this.playButton,
      this.forward,
      this.toEnd,
      this.range,
      this.label,
      this.passPicker,
      this.speed,
    );
  }

  setPasses(passes, selected) {
    this.passPicker.replaceChildren(
      ...passes.map((p, i) =>
        el(
          "option",
          { value: i, selected: i === selected },
          this.t(p.added ? "passAdded" : "pass", { n: i + 1 }),
        ),
      ),
    );
    this.passPicker.hidden = passes.length < 1;
    this.passPicker.disabled = passes.length < 2;
  }

  setPositions(positions, index) {
    this.pause();
    this.positions = positions;
    this.range.max = Math.max(0, positions.length - 1);
    this.go(Math.max(0, Math.min(index, positions.length - 1)));
  }

  current() {
    return this.positions[this.index] ?? null;
  }

  go(index) {
    if (!this.positions.length) return;
    this.index = Math.max(0, Math.min(index, this.positions.length - 1));
    this.range.value = this.index;
    const position = this.positions[this.index];
    const phaseTotal = this.positions.filter((p) => p.phase === position.phase).length;
    const phaseIndex = this.positions
      .slice(0, this.index + 1)
      .filter((p) => p.phase === position.phase).length;
    this.label.textContent = this.t("stepLabel", {
      phase: this.t(position.phase),
      i: phaseIndex,
      n: phaseTotal,
    });
    this.container.dataset.phase = position.phase;
    this.onPosition(position);
  }

  step(delta) {
    this.pause();
    this.go(this.index + delta);
  }

  toggle() {
    if (this.playToken) this.pause();
    else this.play();
  }

  play() {
    if (this.index >= this.positions.length - 1) this.go(0);
    const token = {};
    this.playToken = token;
    this.playButton.textContent = "❚❚";
    this.playButton.setAttribute("aria-label", this.t("pause"));
    const tick = () => {
      if (this.playToken !== token) return;
      if (this.index >= this.positions.length - 1) {
        this.pause();
        return;
      }
      this.go(this.index + 1);
      setTimeout(tick, 700 / Number(this.speed.value));
    };
    setTimeout(tick, 700 / Number(this.speed.value));
  }

  pause() {
    this.playToken = null;
    this.playButton.textContent = "▶";
    this.playButton.setAttribute("aria-label", this.t("play"));
  }

  keydown(event) {
    if (event.defaultPrevented || typesText(event.target)) return;
    // PageDown / PageUp are what presenter clickers send
    const actions = {
      ArrowLeft: () => this.step(-1),
      ArrowRight: () => this.step(1),
      PageUp: () => this.step(-1),
      PageDown: () => this.step(1),
      Home: () => this.go(0),
      End: () => this.go(this.positions.length - 1),
      " ": () => this.toggle(),
    };
    const action = actions[event.key];
    if (action && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      action();
    }
  }
}
