"""A pytest plugin that fails every test whose call checks nothing."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.raises import RaisesExc

# Rewritten test modules are cached as .pyc; ones cached before the assertion-pass hook was on
# carry no call to it, so they are rewritten once more when this stamp is missing.
HOOK_STAMP = "assertion-pass-hook-1"

checks_in_this_call: list[int] = [0]


def count_check() -> None:
    """One more passed check in the running test."""
    checks_in_this_call[0] += 1


def pytest_assertion_pass(item: pytest.Item, lineno: int, orig: str, expl: str) -> None:
    """Every `assert` that holds is a check."""
    count_check()


def counting_exit(original: Callable[..., bool]) -> Callable[..., bool]:
    """`pytest.raises` that caught what it expected is a check."""

    def exit_and_count(
        self: RaisesExc,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: types.TracebackType | None,
    ) -> bool:
        suppressed = original(self, exc_type, exc_val, exc_tb)
        if suppressed:
            count_check()
        return suppressed

    return exit_and_count


def counting_expect(original: Callable[..., Any]) -> Callable[..., Any]:
    """A playwright `expect(...)` is a check: its assertions raise when they fail."""

    def expect_and_count(self: object, *args: object, **kwargs: object) -> Any:  # noqa: ANN401
        count_check()
        return original(self, *args, **kwargs)

    return expect_and_count


def purge_stale_rewrites(tests_dir: Path) -> None:
    """Drop cached rewrites of test modules made without the assertion-pass hook."""
    cache = tests_dir / "__pycache__"
    stamp = cache / HOOK_STAMP
    if stamp.exists() or not cache.is_dir():
        return
    for pyc in cache.glob("*-pytest-*.pyc"):
        pyc.unlink(missing_ok=True)
    stamp.touch()


def pytest_configure(config: pytest.Config) -> None:
    """Count the checks of pytest.raises and playwright's expect as well as plain asserts."""
    if not config.getini("enable_assertion_pass_hook"):
        raise pytest.UsageError("enable_assertion_pass_hook must be on to count checks")
    purge_stale_rewrites(Path(__file__).parent)
    RaisesExc.__exit__ = counting_exit(RaisesExc.__exit__)  # type: ignore[method-assign]
    try:
        from playwright.sync_api import expect
    except ImportError:
        return
    expect_class = type(expect)
    expect_class.__call__ = counting_expect(expect_class.__call__)  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test that returned without one passed check."""
    checks_in_this_call[0] = 0
    result = yield
    if checks_in_this_call[0] == 0:
        pytest.fail(
            "the test checked nothing: no assert, pytest.raises or expect() held", pytrace=False
        )
    return result
