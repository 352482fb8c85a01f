"""PNG pictures from SVG with librsvg, scaled to what librsvg can draw."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.page_render import MAX_PNG_PX, fitting_zoom, rasterize, rsvg_available


def wide_svg(width_pt: int, height_pt: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_pt}pt" height="{height_pt}pt" '
        f'viewBox="0 0 {width_pt} {height_pt}"><rect width="{width_pt}" height="{height_pt}" '
        'fill="#fff"/><text x="10" y="20">wide</text></svg>'
    ).encode()


def test_the_zoom_shrinks_only_what_would_be_too_big() -> None:
    assert fitting_zoom(wide_svg(300, 200), 1.5) == 1.5
    assert fitting_zoom(b'<svg viewBox="0 0 1 1">', 1.5) == 1.5  # no size: as asked
    zoom = fitting_zoom(wide_svg(30_000, 200), 1.5)
    assert 30_000 * 96 / 72 * zoom == pytest.approx(MAX_PNG_PX)


@pytest.mark.skipif(not rsvg_available(), reason="needs librsvg's rsvg-convert")
def test_a_picture_wider_than_librsvg_draws_comes_out_scaled_down() -> None:
    png = rasterize(wide_svg(30_000, 200))  # 60,000 px wide at the usual zoom
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.width == pytest.approx(MAX_PNG_PX, abs=2)
        assert picture.height == pytest.approx(200 * MAX_PNG_PX / 30_000, abs=2)
