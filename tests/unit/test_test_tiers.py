"""The test tiers: unmarked tests stay in-process (tests/conftest.py), and `make help`
lists every target, test-fast and test-e2e included."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_fast_test_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match=r"mark it pytest\.mark\.integration"):
        subprocess.run(["true"], check=False)
    with pytest.raises(AssertionError, match=r"mark it pytest\.mark\.integration"):
        multiprocessing.get_context("spawn").Process(target=print).start()


@pytest.mark.integration
def test_a_marked_test_may_start_one() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0


@pytest.mark.integration
def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", makefile, re.M)) - {".PHONY"}
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    listed = set(re.findall(r"^\s+make (\S+)", shown.stdout, re.M))
    assert {"test-fast", "test-e2e", "up", "test"} <= listed
    assert targets == listed, f"targets without a ## description: {sorted(targets - listed)}"
