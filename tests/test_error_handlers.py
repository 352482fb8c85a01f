"""One table decides each error's HTTP status; the API answers every failure from it."""

from __future__ import annotations

import pytest

from app.dot_run import LayoutBusy, LayoutUnavailable
from app.error_handlers import http_error_of
from app.errors import STATUS_OF, failure
from app.page_render import RendererUnavailable
from app.sandbox.pool import PoolBusy
from app.sandbox.wire import GRAPH, OUTCOMES
from app.service import RateLimited


@pytest.mark.parametrize(("kind", "status"), sorted(STATUS_OF.items()))
def test_a_failure_gets_the_status_of_its_type(kind: str, status: int) -> None:
    error = http_error_of(failure(kind, "why", line=2))
    assert error is not None and error.status_code == status
    assert error.detail == {"type": kind, "message": "why", "line": 2}


@pytest.mark.parametrize(
    ("exc", "status", "kind", "retry_after"),
    [
        (PoolBusy("8 traces are running or waiting"), 503, "Busy", "2"),
        (LayoutBusy("no dot slot"), 503, "Busy", "2"),
        (RateLimited(17), 429, "RateLimited", "17"),
        (LayoutUnavailable("install graphviz"), 503, "LayoutUnavailable", None),
        (RendererUnavailable("install librsvg2-bin"), 503, "RendererUnavailable", None),
    ],
)
def test_the_services_exceptions_are_answered_from_the_table(
    exc: Exception, status: int, kind: str, retry_after: str | None
) -> None:
    error = http_error_of(exc)
    assert error is not None and error.status_code == status == STATUS_OF[kind]
    assert error.detail["type"] == kind
    assert (error.headers or {}).get("Retry-After") == retry_after


def test_an_unknown_exception_is_not_turned_into_an_answer() -> None:
    assert http_error_of(KeyError("x")) is None


def test_every_outcome_a_child_may_report_has_a_status() -> None:
    assert OUTCOMES - {GRAPH} <= set(STATUS_OF)
