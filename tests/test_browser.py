"""The explorer in a real browser: run, step, inspect, errors, language, links, embed."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import CHROMIUM, editor_code, type_code, wait_until_changed

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def open_example(page, example: str) -> None:
    page.goto(f"{page.base}/#example={example}")
    page.wait_for_selector('[data-testid="node"]')
    expect_status_done(page)


def expect_status_done(page) -> None:
    playwright_api.expect(page.get_by_test_id("status")).to_have_text(
        re.compile(r"Recorded|记录了"), timeout=20_000
    )


def after_new_graph(page, action) -> None:
    """Do something that traces again, and wait until the new graph is shown."""
    before = page.evaluate("document.body.dataset.shown ?? '0'")
    action()
    wait_until_changed(page, "shown", before)


def after_failure(page, action) -> None:
    """Do something that fails, and wait until the failure is shown."""
    before = page.evaluate("document.body.dataset.failures ?? '0'")
    action()
    wait_until_changed(page, "failures", before)


def node(page, name: str):
    return page.locator(f'[data-testid="node"][data-name="{name}"]')


def test_page_loads_with_an_example(page) -> None:
    page.goto(page.base + "/")
    page.wait_for_selector('[data-testid="node"]')
    expect_status_done(page)
    assert "torch" in editor_code(page)
    assert page.locator('[data-testid="node"]').count() >= 8
    assert page.locator(".legend li").count() == 7


def test_run_gallery_example_shows_leaves(page) -> None:
    open_example(page, "shared_weight")
    after_new_graph(page, lambda: page.click('[data-example="linear_expression"]'))
    playwright_api.expect(node(page, "b")).to_be_visible()
    assert node(page, "x").get_attribute("class").count("kind-const") == 1
    assert "kind-leaf" in node(page, "w").get_attribute("class")
    node(page, "x").click()
    playwright_api.expect(page.get_by_test_id("dot-grad")).to_contain_text("requires_grad=False")


def test_forward_steps_highlight_the_source_line(page) -> None:
    open_example(page, "linear_expression")
    page.get_by_test_id("to-start").click()
    editor = page.locator("#editor")
    code = editor_code(page).splitlines()
    line = int(editor.get_attribute("data-current-line"))
    assert code[line - 1].startswith("y = x * w + b")
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Forward step 1 of 2")
    )
    page.keyboard.press("ArrowRight")
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Forward step 2 of 2")
    )
    assert page.locator(".node.is-current").count() >= 1


def test_backward_to_the_end_reads_w_grad_5(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("to-end").click()
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Backward step 5 of 5")
    )
    node(page, "w").click()
    inspector = page.get_by_test_id("inspector")
    playwright_api.expect(inspector.get_by_test_id("dot-grad")).to_contain_text("[5.]")
    badge = node(page, "w").locator(".badge-text")
    playwright_api.expect(badge).to_contain_text("+")  # the two contributions that met at w
    playwright_api.expect(badge).to_contain_text("= [5.]")


def test_four_accumulating_passes_read_20(page) -> None:
    open_example(page, "grad_accumulation")
    picker = page.get_by_test_id("pass-picker")
    assert picker.locator("option").count() == 4
    picker.select_option("3")
    # the pass's own layout arrives first, then its steps
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Backward step 1 of")
    )
    page.get_by_test_id("to-end").click()
    node(page, "w").click()
    playwright_api.expect(page.get_by_test_id("dot-grad")).to_contain_text("[20.]")
    picker.select_option("1")
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Backward step 1 of")
    )
    page.get_by_test_id("to-end").click()
    playwright_api.expect(page.get_by_test_id("dot-grad")).to_contain_text("[10.]")


def test_broken_code_shows_error_at_its_line_with_partial_graph(page) -> None:
    open_example(page, "shared_weight")
    editor = page.get_by_test_id("editor")
    page.get_by_test_id("live").uncheck()
    type_code(page, "import torch\nw = torch.ones(2, requires_grad=True)\ny = w * 3\nz = y[5]\n")
    after_new_graph(page, lambda: page.get_by_test_id("run").click())
    error = page.get_by_test_id("error")
    playwright_api.expect(error).to_contain_text("line 4")
    playwright_api.expect(error).to_contain_text("IndexError")
    assert page.locator("#editor").get_attribute("data-error-line") == "4"
    playwright_api.expect(node(page, "y")).to_be_visible()
    ghost = page.locator(".node.failed")  # the call that raised, drawn at the end of forward
    playwright_api.expect(ghost).to_have_count(1)
    page.get_by_test_id("to-end").click()
    playwright_api.expect(ghost).to_have_class(re.compile("is-current"))
    playwright_api.expect(ghost.locator(".badge-text")).to_contain_text("IndexError")
    page.expected_http_errors.add(400)
    type_code(page, "import torch\nimport subprocess\n")
    after_failure(page, lambda: editor.press("Control+Enter"))
    playwright_api.expect(error).to_contain_text("line 2")
    playwright_api.expect(error).to_contain_text("other processes")
    assert page.locator("#editor").get_attribute("data-error-line") == "2"
    assert page.locator('[data-testid="node"]').count() > 0  # the page never goes blank


def test_switch_to_chinese_and_it_is_remembered(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("lang").select_option("zh")
    playwright_api.expect(page.get_by_test_id("run")).to_contain_text("运行")
    playwright_api.expect(page.get_by_test_id("position")).to_contain_text("步")
    assert "叶子" in page.get_by_test_id("gallery").inner_text()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.goto(page.base + "/")
    playwright_api.expect(page.get_by_test_id("run")).to_contain_text("运行")


def test_copied_link_reproduces_the_view(page, browser) -> None:
    open_example(page, "grad_accumulation")
    page.get_by_test_id("pass-picker").select_option("2")
    for _ in range(3):
        page.get_by_test_id("step-forward").click()
    node(page, "w").click()
    page.get_by_test_id("copy-link").click()
    playwright_api.expect(page.get_by_test_id("copy-link")).to_have_attribute(
        "data-href", re.compile("^http")
    )
    link = page.get_by_test_id("copy-link").get_attribute("data-href")
    position = page.get_by_test_id("position").inner_text()
    line = page.locator("#editor").get_attribute("data-current-line")
    other = browser.new_page()
    other.goto(link)
    other.wait_for_selector('[data-testid="node"]')
    playwright_api.expect(other.get_by_test_id("position")).to_have_text(position)
    assert other.locator("#editor").get_attribute("data-current-line") == line
    assert other.get_by_test_id("pass-picker").input_value() == "2"
    playwright_api.expect(other.get_by_test_id("inspector-title")).to_have_text("w")
    other.close()


def test_module_boxes_expand_and_collapse(page) -> None:
    open_example(page, "mlp_cross_entropy")
    box = page.locator('[data-testid="node"][data-node-id="group:fc1"]')
    playwright_api.expect(box).to_be_visible()
    box.click()
    playwright_api.expect(
        page.locator('[data-testid="cluster"][data-module="fc1"]')
    ).to_be_visible()
    playwright_api.expect(node(page, "net.fc1.weight")).to_be_visible()
    assert "expanded=fc1" in page.url
    page.locator('[data-module="fc1"] .cluster-label').click()
    playwright_api.expect(box).to_be_visible()


def test_back_restores_the_open_module_and_the_selected_node(page) -> None:
    open_example(page, "mlp_cross_entropy")
    page.locator('[data-testid="node"][data-node-id="group:fc1"]').click()
    weight = node(page, "net.fc1.weight")
    playwright_api.expect(weight).to_be_visible()
    weight.click()
    title = page.get_by_test_id("inspector-title")
    playwright_api.expect(title).to_have_text("net.fc1.weight")
    after_new_graph(page, lambda: page.click('[data-example="linear_expression"]'))
    assert "expanded=" not in page.url and "select=" not in page.url
    after_new_graph(page, page.go_back)
    cluster = page.locator('[data-testid="cluster"][data-module="fc1"]')
    playwright_api.expect(cluster).to_be_visible()
    playwright_api.expect(title).to_have_text("net.fc1.weight")
    assert "expanded=fc1" in page.url and "select=" in page.url


def test_embed_shows_graph_and_player(page) -> None:
    page.goto(f"{page.base}/embed#example=shared_weight&step=backward:0:4")
    page.wait_for_selector('[data-testid="node"]')
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Backward step 5 of 5")
    )
    assert page.get_by_test_id("editor").count() == 0
    assert page.get_by_test_id("open-in-explorer").get_attribute("href").startswith("/#")
    playwright_api.expect(node(page, "w").locator(".badge-text")).to_contain_text("= [5.]")


def test_training_loop_plots_series(page) -> None:
    open_example(page, "linear_regression")
    playwright_api.expect(page.get_by_test_id("series")).to_be_visible()
    assert page.locator('[data-testid="series"] canvas').count() >= 1  # uPlot draws on a canvas
    assert page.locator('[data-testid="series"] .series-legend li').count() >= 2
    playwright_api.expect(page.get_by_test_id("notes")).to_contain_text("passes")


def test_editor_tab_play_zoom_and_theme(page) -> None:
    open_example(page, "linear_expression")
    editor = page.get_by_test_id("editor")
    page.get_by_test_id("live").uncheck()
    type_code(page, "x = 1")
    editor.press("End")
    editor.press("Tab")
    assert editor_code(page) == "    x = 1"  # Tab indents the line
    page.keyboard.press("Escape")  # Esc hands the keyboard back to the page
    page.keyboard.press("Tab")
    assert editor_code(page) == "    x = 1"
    assert page.evaluate("!document.activeElement.closest('.cm-editor')")
    after_new_graph(page, lambda: page.click('[data-example="shared_weight"]'))
    page.get_by_test_id("to-start").click()
    page.get_by_test_id("play").click()
    playwright_api.expect(page.get_by_test_id("position")).to_have_text(
        re.compile("Backward step 5 of 5"), timeout=20_000
    )
    scale = float(page.locator(".graph-svg").get_attribute("data-scale"))
    page.get_by_test_id("zoom-in").click()
    assert float(page.locator(".graph-svg").get_attribute("data-scale")) > scale
    page.get_by_test_id("fit").click()
    assert float(page.locator(".graph-svg").get_attribute("data-scale")) == pytest.approx(
        scale, rel=1e-3
    )
    before = page.evaluate("document.documentElement.dataset.theme")
    page.get_by_test_id("theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") != before
    node(page, "w").focus()
    page.keyboard.press("Enter")
    playwright_api.expect(page.get_by_test_id("inspector-title")).to_have_text("w")


def test_gradient_accumulation_plots_w_grad_rising(page) -> None:
    open_example(page, "grad_accumulation")
    legend = page.locator('[data-testid="series"] .series-legend')
    playwright_api.expect(legend).to_contain_text("w.grad: 5. → 20.")
    chart = page.locator('[data-testid="series"] .series-chart')
    playwright_api.expect(chart).to_have_attribute("data-y-max", re.compile(r"\d"))
    # one shared y scale spans w.grad's 5 to 20 and the other series
    assert float(chart.get_attribute("data-y-min")) <= 5
    assert float(chart.get_attribute("data-y-max")) >= 20


def test_device_picker_shows_the_servers_devices_and_sends_the_choice(page) -> None:
    open_example(page, "shared_weight")
    listing = page.request.get(page.base + "/api/v1/devices").json()
    picker = page.get_by_test_id("device")
    playwright_api.expect(picker).to_have_attribute("data-devices", re.compile("^cpu"))
    cpu_title = picker.locator('option[value="cpu"]').get_attribute("title")
    assert cpu_title.startswith("cpu") and (listing["devices"][0]["name"] or "cpu") in cpu_title
    assert picker.locator('option[value="cuda"]').is_disabled() is not listing["cuda"]
    picker.select_option("auto")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/trace")) as sent:
        after_new_graph(page, lambda: page.click('[data-testid="run"]'))
    assert sent.value.post_data_json["device"] == "auto"
    assert node(page, "w").count() == 1
