"""How tests and benchmarks start Debian's Chromium (playwright cannot download browsers here)."""

from __future__ import annotations

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


def launch(playwright):
    """A headless Chromium browser from Debian's package."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def wait_until_changed(page, name: str, before: str, timeout: float = 20_000) -> None:
    """Wait until the body's data-NAME is set and differs from before (the pages' CSP refuses
    the eval behind page.wait_for_function)."""
    from playwright.sync_api import expect

    pattern = re.compile(f"^(?!{re.escape(before)}$).+")
    expect(page.locator("body")).to_have_attribute(f"data-{name}", pattern, timeout=timeout)
