"""The OpenAPI page at /docs works without internet: Swagger UI comes from static/vendor."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.browser_support import CHROMIUM, launch
from tests.live_server import live_server


class Resources(HTMLParser):
    """Every script src and stylesheet/icon href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("src", "href"):
            if values.get(key):
                self.urls.append(values[key])


@pytest.fixture(scope="module")
def client(inprocess_client) -> TestClient:
    return inprocess_client


def test_docs_loads_swagger_ui_from_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    found = Resources()
    found.feed(page.text)
    assets = [u for u in found.urls if not u.startswith("data:")]
    assert sorted(assets) == [
        "/static/vendor/swagger_ui/swagger-ui-bundle.js",
        "/static/vendor/swagger_ui/swagger-ui.css",
    ]
    assert "cdn." not in page.text and "'/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text  # nothing is sent to validator.swagger.io
    for url, kind in zip(sorted(assets), ("javascript", "text/css"), strict=True):
        asset = client.get(url)
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > 100_000


def test_redoc_is_not_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404


def test_the_licence_ships_with_the_vendored_files(client: TestClient) -> None:
    licence = client.get("/static/vendor/swagger_ui/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    assert client.get("/static/vendor/swagger_ui/VERSION").text.startswith("swagger-ui-dist@")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_docs_render_every_endpoint_with_no_other_site() -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_server(Settings(workers=1)) as (base, app), sync_playwright() as p:
        operations = sum(len(methods) for methods in app.openapi()["paths"].values())
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        elsewhere: list[str] = []

        def only_this_server(route) -> None:
            url = route.request.url
            if url.startswith(base) or urlparse(url).scheme in ("data", "blob"):
                route.continue_()
            else:
                elsewhere.append(url)
                route.abort()

        page.route("**/*", only_this_server)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/docs")
        expect(page.locator(".opblock")).to_have_count(operations, timeout=30_000)
        trace = page.locator("#operations-api-trace_api_v1_trace_post")
        trace.locator(".opblock-summary").click()
        expect(trace).to_contain_text("w feeds two ops; its gradient is 3 + 2 = 5")  # requests
        expect(trace).to_contain_text("MulBackward0")  # the response example
        browser.close()
    assert elsewhere == [] and errors == []
