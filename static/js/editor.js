// The code editor: line numbers, Tab inserts spaces, Ctrl/Cmd+Enter runs, a line highlight and error marks.
import { el } from "./dom.js";

export function createEditor(container, { onRun = () => {}, onChange = () => {} } = {}) {
  const gutter = el("div", { class: "gutter", "aria-hidden": "true" });
  const highlight = el("div", { class: "line-highlight", hidden: true });
  const errorMark = el("div", { class: "line-error", hidden: true });
  const area = el("textarea", { "data-testid": "editor", spellcheck: "false", autocapitalize: "off", autocomplete: "off", wrap: "off", "aria-label": "program" });
  const body = el("div", { class: "editor-body" }, highlight, errorMark, area);
  container.append(el("div", { class: "editor" }, gutter, body));
  const lineHeight = () => parseFloat(getComputedStyle(area).lineHeight) || 20;
  const paddingTop = () => parseFloat(getComputedStyle(area).paddingTop) || 0;

  function renumber() {
    const count = area.value.split("\n").length;
    if (gutter.childElementCount !== count) {
      gutter.replaceChildren(...Array.from({ length: count }, (_, i) => el("div", {}, String(i + 1))));
    }
  }

  function place(marker, line) {
    if (!line) { marker.hidden = true; return; }
    marker.hidden = false;
    marker.style.top = `${paddingTop() + (line - 1) * lineHeight() - area.scrollTop}px`;
    marker.style.height = `${lineHeight()}px`;
    marker.dataset.line = String(line);
  }

  let current = null;
  let errorLine = null;
  area.addEventListener("scroll", () => {
    gutter.scrollTop = area.scrollTop;
    place(highlight, current);
    place(errorMark, errorLine);
  });
  area.addEventListener("input", () => { renumber(); onChange(area.value); });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      area.setRangeText("    ", area.selectionStart, area.selectionEnd, "end");
      renumber();
      onChange(area.value);
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onRun();
    }
  });

  return {
    element: area,
    getCode: () => area.value,
    setCode(code) { area.value = code; renumber(); area.scrollTop = 0; },
    highlightLine(line) {
      current = line;
      place(highlight, line);
      if (line) {
        const top = paddingTop() + (line - 1) * lineHeight();
        if (top < area.scrollTop || top > area.scrollTop + area.clientHeight - lineHeight()) area.scrollTop = Math.max(0, top - area.clientHeight / 3);
        place(highlight, line);
      }
      container.dataset.currentLine = line ? String(line) : "";
    },
    markError(line) {
      errorLine = line;
      place(errorMark, line);
      container.dataset.errorLine = line ? String(line) : "";
    },
  };
}
