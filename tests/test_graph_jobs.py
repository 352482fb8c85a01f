"""Graph jobs: the same answers in the server and in the helper process, failures typed."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.deck import DeckOptions
from app.dot_run import DotLimits
from app.errors import BadAnswer, LimitExceeded
from app.export import BadStep
from app.graph_jobs import NODE_SLACK, GraphBounds, GraphHelper, do_job, read_graph, run_job, unpack
from app.main import create_app
from app.tracing import trace_code
from tests.conftest import SAFE_PROGRAM, w_grad

pytestmark = pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")


@pytest.fixture(scope="module")
def payload() -> bytes:
    return trace_code(SAFE_PROGRAM).model_dump_json().encode()


def test_jobs_in_the_helper_process_equal_jobs_here(payload: bytes) -> None:
    helper = GraphHelper()
    try:
        for job, args in (
            ("trace", (DotLimits(),)),
            ("layout", ([], None, 2.0, DotLimits())),
            ("render", ("dot", [], None, "light", "en", None, DotLimits())),
        ):
            remote = unpack(helper.submit(job, payload, args).result(timeout=300))
            assert remote == unpack(run_job(job, payload, args)), job
        answer, cacheable = remote_trace = unpack(run_job("trace", payload, (DotLimits(),)))
        assert cacheable and json.loads(answer)["layout"]["nodes"], remote_trace
    finally:
        helper.close()


def test_failures_come_back_as_their_own_exceptions(payload: bytes) -> None:
    with pytest.raises(BadStep):
        unpack(
            run_job("render", payload, ("svg", [], "forward:99", "light", "en", None, DotLimits()))
        )
    with pytest.raises(LimitExceeded) as hit:
        unpack(run_job("layout", payload, (["line:4"], None, 2.0, DotLimits(max_edges=1))))
    assert hit.value.limit == "edges"
    with pytest.raises(BadStep):
        unpack(run_job("deck", payload, (DeckOptions(format="pdf", steps="90-99"), None, None)))
    with pytest.raises(LimitExceeded) as many:
        unpack(run_job("deck", payload, (DeckOptions(format="gif", max_pages=1), None, None)))
    assert many.value.limit == "deck_pages"


@pytest.mark.skipif(__import__("shutil").which("rsvg-convert") is None, reason="needs librsvg")
def test_a_deck_made_in_the_helper_process_has_a_page_per_step(payload: bytes) -> None:
    import io

    from pypdf import PdfReader

    from app.schemas import Graph

    graph = Graph.model_validate_json(payload)
    helper = GraphHelper()
    try:
        options = DeckOptions(format="pdf", lang="zh")
        pdf = unpack(helper.submit("deck", payload, (options, None, DotLimits())).result(300))
    finally:
        helper.close()
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == len(graph.forward) + sum(len(p.steps) for p in graph.backward)


def test_a_trace_job_notes_a_failed_layout_and_stays_cacheable(payload: bytes) -> None:
    from app.schemas import Graph

    answer, cacheable = do_job(
        Graph.model_validate_json(payload), "trace", (DotLimits(memory_mb=1),)
    )
    graph = json.loads(answer)
    assert cacheable and graph["layout"] is None and "No layout" in graph["notes"][-1]


def test_big_graphs_go_through_the_helper_process(monkeypatch) -> None:
    monkeypatch.setattr("app.service.BIG_GRAPH_BYTES", 0)  # every graph counts as big
    with TestClient(create_app(Settings(isolation=False))) as client:
        traced = client.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
        assert traced.status_code == 200 and w_grad(traced.json()) == [5.0]
        assert traced.json()["layout"] is not None
        assert client.app.state.service.helper._executor is not None
        bad = client.post("/api/v1/render", json={"code": SAFE_PROGRAM, "step": "forward:99"})
        assert bad.status_code == 400 and bad.json()["detail"]["type"] == "BadStep"
        svg = client.post("/api/v1/render", json={"code": SAFE_PROGRAM, "format": "svg"})
        assert svg.status_code == 200 and svg.content.startswith(b"<?xml")


def forged(**fields: object) -> bytes:
    return json.dumps({"device": "cpu", **fields}).encode()


def test_a_graph_past_the_recorders_bounds_is_a_bad_answer() -> None:
    """Every job after the parse (badges, layouts, exports with one dot run per pass) works on
    a graph no bigger than the recorder makes."""
    bounds = GraphBounds(max_nodes=10, max_passes=2)
    graph = read_graph(forged(backward=[{"root": [], "steps": []}] * 2), bounds)
    assert len(graph.backward) == 2
    node = trace_code(SAFE_PROGRAM).nodes[0].model_dump(mode="json")
    bad = [
        (forged(backward=[{"root": [], "steps": []}] * 3), "backward passes"),
        (forged(nodes=[{**node, "id": f"t{i}"} for i in range(10 + NODE_SLACK + 1)]), "nodes"),
        (forged(nodes=[node, node]), "share an id"),
        (forged(edges=[{"id": "e", "source": "a", "target": "b"}]), "edge"),
        (b"[" * 10_000, "not a Graph"),
        (b'{"device": 1}', "not a Graph"),
    ]
    for payload, why in bad:
        with pytest.raises(BadAnswer, match=why):
            read_graph(payload, bounds)
        kind, message = run_job("trace", payload, (DotLimits(),), bounds)
        assert kind == "bad" and why in message
        with pytest.raises(BadAnswer):
            unpack((kind, message))


def test_a_job_that_breaks_on_a_graph_is_a_bad_answer_not_an_exception(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("app.graph_jobs.badge_track", lambda graph: 1 / 0)
    kind, message = run_job("trace", forged(), (DotLimits(),))
    assert kind == "bad" and "ZeroDivisionError" in message


def test_a_helper_process_that_dies_is_replaced(payload: bytes) -> None:
    import concurrent.futures

    helper = GraphHelper()
    args = ([], None, 2.0, DotLimits())
    try:
        first = unpack(helper.submit("layout", payload, args).result(timeout=300))
        for process in list(helper._executor._processes.values()):
            process.kill()  # as the kernel's OOM killer would
            process.join()
        try:  # the job in flight as it died fails (the service answers 503) ...
            helper.submit("layout", payload, args).result(timeout=300)
        except concurrent.futures.BrokenExecutor:
            pass
        # ... and the next one runs in a new helper process
        assert unpack(helper.submit("layout", payload, args).result(timeout=300)) == first
    finally:
        helper.close()
