"""The HTML a notebook cell shows: the player in an iframe, a still picture where it is stripped."""

from __future__ import annotations

import base64
import html

from app.schemas import Layout

# The width of a notebook's output area, about: classic Jupyter ~940 px, JupyterLab and VS Code
# at a laptop's width ~900 px. The iframe takes the cell's whole width; this only sizes its height.
CELL_WIDTH = 900
# Under the graph: the caption (5.6em of 16 px, padded, with a border) and the player bar.
CHROME_HEIGHT = 156
GRAPH_PAD = 24  # the player's margin around the drawing, and room for the value badges
MIN_HEIGHT = 360  # a one-op graph still shows its caption and a bar that is not cramped
MAX_HEIGHT = 860  # a tall graph scrolls in the player (it follows the step) not in the notebook

# Untrusted HTML (a notebook opened from disk in JupyterLab, Notebook 7 or classic Jupyter) is
# sanitized: <iframe> and <style> are dropped, <img> with a data: URL kept. So the style that hides
# the picture only exists where the iframe does, and where it is stripped the picture shows.
CELL_STYLE = (
    "<style>.autograd-explorer-cell > iframe ~ .autograd-explorer-still { display: none; }</style>"
)
STILL_NOTE = {
    "en": "The graph at its step. Run the cell, or trust the notebook, to play the steps.",
    "zh": "图为当前步骤。运行此单元格或信任此笔记本即可逐步播放。",
}


def cell_height(layout: Layout | None) -> int:
    """Pixels for the player: the graph at the cell's width (never enlarged), plus its caption
    and bar, within a range that fits a notebook."""
    if layout is None:
        return MIN_HEIGHT
    scale = min(1.0, (CELL_WIDTH - GRAPH_PAD) / max(layout.width, 1.0))
    wanted = layout.height * scale + GRAPH_PAD + CHROME_HEIGHT
    return int(min(MAX_HEIGHT, max(MIN_HEIGHT, round(wanted))))


def cell_html(page: str, still_svg: str, height: int, lang: str = "en") -> str:
    """The player page in a sandboxed iframe (srcdoc: no URL to resolve), then the graph as a
    picture and a line saying how to play it, shown only where the iframe was stripped."""
    picture = base64.b64encode(still_svg.encode("utf-8")).decode("ascii")
    note = html.escape(STILL_NOTE.get(lang, STILL_NOTE["en"]))
    return (
        f'<div class="autograd-explorer-cell">{CELL_STYLE}'
        f'<iframe class="autograd-explorer" title="Autograd Explorer" '
        f'srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" width="100%" '
        f'height="{int(height)}" style="border: 1px solid #d0d4da; border-radius: 6px;"></iframe>'
        '<div class="autograd-explorer-still">'
        f'<img src="data:image/svg+xml;base64,{picture}" alt="Autograd Explorer graph" '
        'style="max-width: 100%; height: auto;">'
        f'<p style="margin: .3em 0 0; color: #5b6470; font-size: 13px;">{note}</p>'
        "</div></div>"
    )
