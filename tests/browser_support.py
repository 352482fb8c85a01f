"""How tests and benchmarks start Debian's Chromium (playwright cannot download browsers here)."""

from __future__ import annotations

import os
import re
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
# The pictures of the guide: written to docs/images/ with AE_UPDATE_GUIDE_IMAGES=1, else beside
# the other artifacts, so a run of the suite leaves the checkout as it was.
GUIDE_IMAGES = (
    Path(__file__).resolve().parents[1] / "docs" / "images"
    if os.environ.get("AE_UPDATE_GUIDE_IMAGES") == "1"
    else ARTIFACTS / "guide"
)


def launch(playwright):
    """A headless Chromium browser from Debian's package."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def type_text(page, text: str) -> None:
    """Type text where the editor's cursor is, key by key, as a person does.

    After each Enter the editor indents the new line by itself; Shift+Home selects that
    indentation, so the line's own text (with its own indentation) types over it."""
    for i, line in enumerate(text.split("\n")):
        if i:
            page.keyboard.press("Enter")
            page.keyboard.press("Shift+Home")
        if line:
            page.keyboard.type(line)
        elif i:
            page.keyboard.press("Delete")  # an empty line keeps no indentation either


def type_code(page, code: str) -> None:
    """Replace the editor's program by typing it key by key."""
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    type_text(page, code)


def type_at_end(page, text: str) -> None:
    """Type text after the editor's last character."""
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+End")
    type_text(page, text)


def retype(page, old: str, new: str) -> None:
    """Select the first `old` in the program with the arrow keys and type `new` over it, looking
    at the selection before typing, as a person does (a keystroke lost on a busy machine would
    otherwise type over the wrong characters)."""
    for _ in range(3):
        code = editor_code(page)
        before = code[: code.index(old)]
        line, column = before.count("\n"), len(before) - (before.rfind("\n") + 1)
        page.get_by_test_id("editor").click()
        page.keyboard.press("Control+Home")
        for _ in range(line):
            page.keyboard.press("ArrowDown")
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        for _ in range(len(old)):
            page.keyboard.press("Shift+ArrowRight")
        if page.evaluate("String(document.getSelection())") == old:
            break
    type_text(page, new)


def editor_code(page) -> str:
    """The program in the editor, line by line as CodeMirror holds it."""
    return page.evaluate(
        "[...document.querySelectorAll('#editor .cm-line')].map((l) => l.textContent).join('\\n')"
    )


def wait_until_changed(page, name: str, before: str, timeout: float = 20_000) -> None:
    """Wait until the body's data-NAME is set and differs from before (the pages' CSP refuses
    the eval behind page.wait_for_function)."""
    from playwright.sync_api import expect

    pattern = re.compile(f"^(?!{re.escape(before)}$).+")
    expect(page.locator("body")).to_have_attribute(f"data-{name}", pattern, timeout=timeout)
