"""Decks: every file opened with a real reader (pypdf, python-pptx, Pillow, ffmpeg), one page,
slide or frame per step counted from the recorded graph, text at 14 pt or more."""

from __future__ import annotations

import base64
import io
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.cli import main
from app.deck import (
    PICTURE_PX_PER_PT,
    DeckOptions,
    deck_steps,
    draw_pages,
    geometry,
    select_steps,
)
from app.errors import LimitExceeded
from app.export import BadStep
from app.lessons import get_lesson
from app.pass_view import pass_of_step
from app.schemas import Graph
from app.step_caption import narration_for
from app.tracing import trace_code

pytestmark = pytest.mark.skipif(
    shutil.which("dot") is None or shutil.which("rsvg-convert") is None,
    reason="needs graphviz and librsvg's rsvg-convert",
)
SMALL_LESSONS = ("linear_expression", "shared_weight", "second_derivative")


def recorded_steps(graph: Graph) -> int:
    """Player steps counted straight from the recording: forward calls and backward nodes."""
    return len(graph.forward) + sum(len(record.steps) for record in graph.backward)


@pytest.fixture(scope="module")
def lessons() -> dict[str, tuple[str, Graph]]:
    found = {}
    for lesson in (*SMALL_LESSONS, "grad_accumulation"):
        code = get_lesson(lesson).code
        found[lesson] = (code, trace_code(code))
    return found


def write_program(tmp_path: Path, lesson: str) -> Path:
    program = tmp_path / f"{lesson}.py"
    program.write_text(get_lesson(lesson).code, encoding="utf-8")
    return program


def render_cli(tmp_path: Path, lesson: str, fmt: str, *extra: str) -> Path:
    out = tmp_path / f"{lesson}-{'-'.join(extra) or 'all'}.{fmt}".replace(":", "_")
    code = main(
        ["render", str(write_program(tmp_path, lesson)), "--format", fmt, "-o", str(out), *extra]
    )
    assert code == 0
    return out


def test_deck_steps_play_every_recorded_step_once_in_player_order(lessons) -> None:
    for _, graph in lessons.values():
        steps = deck_steps(graph)
        assert len(steps) == len(set(steps)) == recorded_steps(graph)
    _, loop = lessons["grad_accumulation"]  # each pass's iteration, then its backward pass
    steps = deck_steps(loop)
    for pass_index, record in enumerate(loop.backward):
        first = steps.index(f"backward:{pass_index}:0")
        assert steps[first : first + len(record.steps)] == [
            f"backward:{pass_index}:{i}" for i in range(len(record.steps))
        ]
        forward = [int(s.split(":")[1]) for s in steps[:first] if s.startswith("forward:")]
        assert all(loop.forward[i].after_pass <= pass_index for i in forward)


def test_step_ranges() -> None:
    steps = [f"forward:{i}" for i in range(10)]
    assert select_steps(steps, "3-5") == steps[2:5]
    assert select_steps(steps, "4") == [steps[3]]
    assert select_steps(steps, "8-") == steps[7:]
    assert select_steps(steps, "9-99") == steps[8:]
    for bad in ("0-3", "5-2", "11", "a-b", "3..5", "-3"):
        with pytest.raises(BadStep):
            select_steps(steps, bad)
    with pytest.raises(LimitExceeded) as exceeded:
        select_steps(steps, None, max_pages=4)
    assert exceeded.value.limit == "deck_pages"


@pytest.mark.parametrize("lesson", SMALL_LESSONS)
def test_pdf_has_a_16_9_page_per_step_with_title_and_caption(
    tmp_path: Path, lessons, lesson
) -> None:
    from pypdf import PdfReader

    code, graph = lessons[lesson]
    reader = PdfReader(render_cli(tmp_path, lesson, "pdf"))
    steps = deck_steps(graph)
    assert len(reader.pages) == recorded_steps(graph)
    narration = narration_for(code)
    for number, (page, step) in enumerate(zip(reader.pages, steps, strict=True), start=1):
        assert (float(page.mediabox.width), float(page.mediabox.height)) == (960, 540)
        text = " ".join(page.extract_text().split())
        assert f"{number}/{len(steps)}" in text
        if step.startswith("forward:"):
            assert f"forward step {int(step.split(':')[1]) + 1}/{len(graph.forward)}" in text
        else:
            _, p, i = step.split(":")
            rule = graph.backward[int(p)].steps[int(i)].rule
            if rule is not None and rule.expression:  # the chain rule is the caption
                assert " ".join(rule.expression.split()) in text, (step, text)
        if step in narration:
            assert " ".join(narration[step].en.split())[:40] in text


def test_pdf_is_vector_with_every_font_embedded_chinese_too(tmp_path: Path, lessons) -> None:
    from pypdf import PdfReader

    path = render_cli(tmp_path, "shared_weight", "pdf", "--lang", "zh", "--aspect", "4:3")
    reader = PdfReader(path)
    _, graph = lessons["shared_weight"]
    assert len(reader.pages) == recorded_steps(graph)
    page = reader.pages[4]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (720, 540)
    assert "第 1 次反向" in page.extract_text()
    assert "/Image" not in str(page["/Resources"].get("/XObject", {}))  # drawn, not a picture
    fonts = {}
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        descriptor = (
            font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            if "/DescendantFonts" in font
            else font["/FontDescriptor"]
        ).get_object()
        fonts[str(font["/BaseFont"])] = any(
            key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
        )
    assert fonts and all(fonts.values()), fonts
    assert any("WenQuanYi" in name for name in fonts) and any("DejaVu" in name for name in fonts)


def _min_font_pt(svg: bytes) -> float:
    root = ET.fromstring(svg)
    sizes = [float(e.get("font-size")) for e in root.iter() if e.get("font-size")]
    return min(sizes)


@pytest.mark.parametrize("lesson", SMALL_LESSONS)
def test_pptx_slides_notes_picture_and_text_of_14_pt(tmp_path: Path, lessons, lesson) -> None:
    from PIL import Image
    from pptx import Presentation

    code, graph = lessons[lesson]
    deck = Presentation(str(render_cli(tmp_path, lesson, "pptx")))
    steps = deck_steps(graph)
    assert len(deck.slides) == recorded_steps(graph)
    assert (deck.slide_width.pt, deck.slide_height.pt) == (960, 540)
    options = DeckOptions(format="pptx")
    pages = draw_pages(graph, options, narration_for(code))
    narration = narration_for(code)
    for slide, page, step in zip(deck.slides, pages, steps, strict=True):
        shapes = {shape.name: shape for shape in slide.shapes}
        picture = shapes["Graph"]
        box = geometry(options, page.caption_lines).graph_box
        # the picture fills the graph's box: its full width or height, or both when following
        fills_width = abs(picture.width.pt - box[2]) < 1
        fills_height = abs(picture.height.pt - box[3]) < 1
        assert fills_width or fills_height, (picture.width.pt, picture.height.pt, box)
        pixels = Image.open(io.BytesIO(picture.image.blob)).size[0]
        scale = picture.width.pt / (pixels / PICTURE_PX_PER_PT)
        assert _min_font_pt(page.graph) * scale >= 14 - 0.1, (step, scale)
        for shape in slide.shapes:
            if shape.has_text_frame:
                for paragraph in shape.text_frame.paragraphs:
                    assert all(run.font.size.pt >= 14 for run in paragraph.runs)
        notes = slide.notes_slide.notes_text_frame.text
        if step in narration:
            assert notes.startswith(narration[step].en)
        if step.startswith("backward:"):
            _, p, i = step.split(":")
            rule = graph.backward[int(p)].steps[int(i)].rule
            if rule is not None and rule.expression:
                assert rule.expression in shapes["Caption"].text_frame.text


def test_every_page_of_a_pass_has_the_same_node_positions(lessons) -> None:
    box_of = re.compile(
        r'<g id="[^"]*" class="node[^"]*">\s*<title>([^<]*)</title>\s*<(?:path|rect|polygon)([^>]*)>'
    )
    for lesson in ("shared_weight", "grad_accumulation"):
        _, graph = lessons[lesson]
        pages = draw_pages(graph, DeckOptions(format="pdf"))
        by_pass: dict[str, dict[str, str]] = {}
        for page in pages:
            text = page.graph.decode()
            shapes = {  # where each box is: its outline's coordinates only
                name: re.findall(r'(?<![\w-])(?:d|points|x|y|width|height)="([^"]*)"', attrs)
                for name, attrs in box_of.findall(text)
            }
            pass_key = str(pass_of_step(page.step, graph))  # a loop draws one pass a time
            known = by_pass.setdefault(pass_key, shapes)
            assert shapes == known, (lesson, page.step)
        assert len(by_pass) <= max(1, len(graph.backward))


def test_gif_has_a_frame_per_step_at_the_chosen_speed(tmp_path: Path, lessons) -> None:
    from PIL import Image

    _, graph = lessons["shared_weight"]
    with Image.open(render_cli(tmp_path, "shared_weight", "gif", "--seconds", "0.8")) as gif:
        assert gif.n_frames == recorded_steps(graph)
        assert gif.size == (1280, 720)
        assert gif.info["duration"] == 800 and gif.info["loop"] == 0


def test_mp4_has_a_frame_per_step(tmp_path: Path, lessons) -> None:
    import imageio_ffmpeg

    _, graph = lessons["linear_expression"]
    path = render_cli(tmp_path, "linear_expression", "mp4", "--seconds", "1")
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frames == recorded_steps(graph)
    assert seconds == pytest.approx(recorded_steps(graph), abs=1.01)


def test_a_range_of_steps_and_bad_options_on_the_command_line(tmp_path: Path, capsys) -> None:
    from pypdf import PdfReader

    reader = PdfReader(render_cli(tmp_path, "shared_weight", "pdf", "--steps", "3-5"))
    assert len(reader.pages) == 3
    assert "forward step 3/3" in reader.pages[0].extract_text()
    assert "backward pass 1 · step 2/5" in reader.pages[2].extract_text()
    program = write_program(tmp_path, "shared_weight")
    out = str(tmp_path / "x.pdf")
    assert main(["render", str(program), "--format", "pdf", "--steps", "7-2", "-o", out]) == 2
    assert "steps '7-2'" in capsys.readouterr().err
    assert main(["render", str(program), "--format", "pdf", "--step", "forward:0", "-o", out]) == 2
    assert main(["render", str(program), "--format", "svg", "--steps", "1-2", "-o", out]) == 2
    assert main(["render", str(program), "--format", "pdf", "--max-pages", "3", "-o", out]) == 1
    assert "deck holds at most 3" in capsys.readouterr().err


@pytest.fixture(scope="module")
def deck_client(client_with):
    """The app with a small page cap, programs run in-process."""
    return client_with(isolation=False, wall_seconds=60, max_deck_pages=6, rate_limit_per_minute=0)


def test_render_api_makes_decks_named_after_the_lesson(deck_client) -> None:
    from pptx import Presentation
    from pypdf import PdfReader

    code = get_lesson("linear_expression").code
    graph = trace_code(code)
    pdf = deck_client.post(
        "/api/v1/render", json={"code": code, "format": "pdf", "name": "linear_expression"}
    )
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert 'filename="linear_expression.pdf"' in pdf.headers["content-disposition"]
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == recorded_steps(graph)
    encoded = base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")
    pptx = deck_client.get(
        f"/api/v1/render?code={encoded}&format=pptx&steps=2-3&lang=zh&aspect=4:3"
    )
    assert pptx.status_code == 200 and pptx.headers["content-type"].endswith(
        "presentationml.presentation"
    )
    slides = Presentation(io.BytesIO(pptx.content))
    assert len(slides.slides) == 2 and slides.slide_width.pt == 720


def test_render_api_refuses_bad_deck_options_and_caps_pages(deck_client) -> None:
    shared = get_lesson("shared_weight").code  # 8 steps, over this server's cap of 6
    over = deck_client.post("/api/v1/render", json={"code": shared, "format": "gif"})
    assert over.status_code == 422
    assert over.json()["detail"]["type"] == "LimitExceeded"
    assert over.json()["detail"]["limit"] == "deck_pages"
    within = deck_client.post(
        "/api/v1/render", json={"code": shared, "format": "gif", "steps": "1-6"}
    )
    assert within.status_code == 200 and within.content[:6] == b"GIF89a"
    outside = deck_client.post(
        "/api/v1/render", json={"code": shared, "format": "pdf", "steps": "20-30"}
    )
    assert outside.status_code == 400 and outside.json()["detail"]["type"] == "BadStep"
    for body in (
        {"format": "pdf", "step": "forward:0"},
        {"format": "svg", "steps": "1-2"},
        {"format": "pdf", "aspect": "21:9"},
        {"format": "gif", "seconds": 0},
        {"format": "pdf", "steps": "1..2"},
        {"format": "svg", "name": "../etc/passwd"},
        {"format": "svg", "name": "课程"},  # a header holds Latin-1 only
    ):
        answer = deck_client.post("/api/v1/render", json={"code": shared, **body})
        assert answer.status_code == 422, body
    encoded = base64.urlsafe_b64encode(shared.encode()).decode().rstrip("=")
    assert (
        deck_client.get(f"/api/v1/render?code={encoded}&format=mp4&aspect=1:1").status_code == 400
    )
    assert deck_client.get("/api/v1/health").status_code == 200  # still serving


@pytest.mark.slow
@pytest.mark.parametrize("aspect", ["16:9", "4:3"])
def test_every_lessons_pages_keep_text_at_14_pt(aspect: str) -> None:
    from app.deck import page_svg
    from app.lessons import ORDER

    for lesson in ORDER:
        code = get_lesson(lesson).code
        graph = trace_code(code)
        options = DeckOptions(format="pdf", aspect=aspect, steps="1-6", lang="zh")
        pages = draw_pages(graph, options, narration_for(code))
        for number, page in enumerate(pages, start=1):
            view = page.view(geometry(options, page.caption_lines).graph_box)
            assert view.scale >= 1, (lesson, page.step)
            assert _min_font_pt(page.graph) * view.scale >= 14, (lesson, page.step)
            assert _min_font_pt(page_svg(page, number, len(pages), options)) >= 14
