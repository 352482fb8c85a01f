"""SVG pages to PNG or to one multi-page PDF with librsvg's rsvg-convert, within limits.

rsvg-convert draws text with Pango, which falls back to a font that has the glyph (Chinese
in WenQuanYi beside DejaVu Sans), and cairo embeds the fonts used in the PDF as subsets."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.dot_run import DotFailed, DotLimits, dot_command
from app.errors import LimitExceeded

RSVG_HINT = (
    "librsvg's 'rsvg-convert' was not found: install it (Debian/Ubuntu: apt-get install "
    "librsvg2-bin; macOS: brew install librsvg) to export PNG, PDF, PPTX, GIF and MP4"
)


class RendererUnavailable(Exception):
    """rsvg-convert is not installed."""


def rsvg_available() -> bool:
    """Whether librsvg's rsvg-convert is on PATH."""
    return shutil.which("rsvg-convert") is not None


def _command(limits: DotLimits) -> tuple[list[str], object]:
    """rsvg-convert's argv under the same memory, CPU and priority bounds as dot."""
    argv, preexec = dot_command("svg", limits)
    cut = argv.index("dot")
    return [*argv[:cut], "rsvg-convert"], preexec


def run_rsvg(
    pages: list[bytes], fmt: str, zoom: float = 1.0, limits: DotLimits | None = None
) -> bytes:
    """PNG of one SVG page (fmt 'png'), or one PDF of every page in order (fmt 'pdf')."""
    if not rsvg_available():
        raise RendererUnavailable(RSVG_HINT)
    if fmt == "png" and len(pages) != 1:
        raise ValueError("a PNG holds one page")
    limits = limits or DotLimits()
    argv, preexec = _command(limits)
    with tempfile.TemporaryDirectory(prefix="ae-pages-") as folder:
        names = []
        for i, page in enumerate(pages):
            path = Path(folder) / f"page-{i:05d}.svg"
            path.write_bytes(page)
            names.append(str(path))
        out = Path(folder) / f"out.{fmt}"
        command = [*argv, "-f", fmt, "-z", f"{zoom:g}", "-o", str(out), *names]
        try:
            done = subprocess.run(  # noqa: S603 (a fixed program, files we wrote)
                command,
                capture_output=True,
                timeout=limits.seconds * max(1, len(pages) / 10),
                preexec_fn=preexec,  # type: ignore[arg-type]
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LimitExceeded(
                "render_time", f"drawing the pages took longer than {limits.seconds:g} s"
            ) from None
        if done.returncode != 0 or not out.exists():
            error = done.stderr.decode(errors="replace")[:300]
            if done.returncode < 0 or "memory" in error.lower():
                raise LimitExceeded(
                    "render_memory", f"drawing the pages needed more than {limits.memory_mb} MB"
                )
            raise DotFailed(f"rsvg-convert failed: {error}")
        return out.read_bytes()


MAX_PNG_PX = 16_384  # librsvg refuses images past 32,767 px a side; a picture this big is plenty
_ROOT = re.compile(rb"<svg\b[^>]*>")
_SIDE = re.compile(rb'\s(?:width|height)="([\d.]+)(pt|px)?"')
_PX_PER_UNIT = {b"pt": 96 / 72, b"px": 1.0, None: 1.0}


def fitting_zoom(svg: bytes, zoom: float) -> float:
    """zoom, or less where the SVG drawn at zoom would be wider or taller than MAX_PNG_PX."""
    root = _ROOT.search(svg[:4096])
    sides = [float(v) * _PX_PER_UNIT[unit] for v, unit in _SIDE.findall(root[0])] if root else []
    largest = max(sides, default=0.0) * zoom
    return zoom if largest <= MAX_PNG_PX else zoom * MAX_PNG_PX / largest


def rasterize(svg: bytes, limits: DotLimits | None = None, zoom: float = 1.5) -> bytes:
    """A PNG of an SVG; rsvg-convert draws at 96 dpi times zoom (1.5: 144 dpi, 2 px a point),
    scaled down where the picture would pass MAX_PNG_PX on a side."""
    return run_rsvg([svg], "png", fitting_zoom(svg, zoom), limits)
