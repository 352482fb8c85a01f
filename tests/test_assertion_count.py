"""The plugin that fails tests which check nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CASES = """
import pytest

def test_checks_nothing():
    int("1")

def test_asserts():
    assert int("1") == 1

def test_expects_an_error():
    with pytest.raises(ValueError):
        int("x")

def test_raises_an_unexpected_error():
    int("x")
"""


def test_a_test_without_a_passed_check_fails(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeini("[pytest]\nenable_assertion_pass_hook = true\n")
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess("-p", "tests.assertion_count", "-rf")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_cases.py::test_checks_nothing - Failed: the test checked nothing*",
            "FAILED test_cases.py::test_raises_an_unexpected_error - ValueError*",
        ]
    )
