"""The public checks as a test suite: `python -m pytest` in this folder checks the .py files."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the checker next to this file

from checker import selfcheck  # noqa: E402

CHECKS = selfcheck.read_public_checks(HERE / "public_checks.json")


@pytest.fixture(scope="module")
def your_code():
    return selfcheck.load(HERE)


@pytest.mark.parametrize("check", CHECKS, ids=[check["id"] for check in CHECKS])
def test_public_check(check, your_code):
    (verdict,) = selfcheck.verdicts(your_code, [check])
    assert verdict.passed, selfcheck.explain(check, verdict)
