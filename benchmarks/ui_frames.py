"""The 24-layer encoder in a real browser: time to the first drawn view, and frame times while
zooming and stepping, against the 60 fps frame budget (16.7 ms) measured in the same run.

Run: .venv/bin/python -m benchmarks.ui_frames
"""

from __future__ import annotations

import statistics
import time

from playwright.sync_api import sync_playwright

from app.config import Settings
from tests.browser_support import launch
from tests.live_server import live_server

BUDGET_MS = 1000 / 60

FRAME_PROBE = """async ([kind, count]) => {
  const svg = document.querySelector('.graph-svg');
  const box = svg.getBoundingClientRect();
  const times = [];
  const handlers = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    if (kind === 'zoom') {
      svg.dispatchEvent(new WheelEvent('wheel', {deltaY: i % 2 ? 120 : -120, clientX: box.x + box.width / 2, clientY: box.y + box.height / 2, bubbles: true, cancelable: true}));
    } else {
      document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
    }
    handlers.push(performance.now() - start);
    await new Promise((resolve) => requestAnimationFrame(resolve));
    times.push(performance.now() - start);
  }
  return [handlers, times];
}"""


def summary(times: list[float]) -> str:
    median = statistics.median(times)
    worst = max(times)
    return (
        f"median {median:6.1f} ms ({median / BUDGET_MS:4.2f}× budget), "
        f"max {worst:6.1f} ms ({worst / BUDGET_MS:4.2f}× budget)"
    )


def main() -> None:
    with live_server(Settings(wall_seconds=60)) as (base, _), sync_playwright() as p:
        browser = launch(p)
        warm = browser.new_page()
        warm.goto(f"{base}/#example=shared_weight")  # warm: server, caches, browser
        warm.wait_for_selector("body[data-shown]")
        warm.close()
        for attempt in ("cold", "cached"):
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            start = time.perf_counter()
            page.goto(f"{base}/#example=transformer_encoder&lang=en")
            page.wait_for_function("document.body.dataset.shown === '1'", timeout=120_000)
            wall = time.perf_counter() - start
            draw = page.evaluate("performance.getEntriesByName('draw')[0].duration")
            nodes = page.locator('[data-testid="node"]').count()
            print(
                f"first view ({attempt}): {wall:5.2f} s from navigation; drawing {draw:6.1f} ms; {nodes} boxes"
            )
        page.locator('[data-node-id="group:layers"]').click()
        page.locator('[data-node-id="group:fold:layers.0"]').click()  # the 24 layers, one box
        page.wait_for_function("document.querySelectorAll('[data-testid=node]').length > 20")
        print(f"expanded 'layers': {page.locator('[data-testid=node]').count()} boxes")
        for kind in ("zoom", "step"):
            handlers, frames = page.evaluate(FRAME_PROBE, [kind, 40])
            print(f"{kind} handler: {summary(handlers)}")
            print(f"{kind} to next frame: {summary(frames)}")
        browser.close()


if __name__ == "__main__":
    main()
