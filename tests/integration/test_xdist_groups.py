"""Tests marked ``xdist_group`` run on one xdist worker, as `make test` relies on.

tests/e2e starts its chart stack once per xdist worker that runs one of its tests, so the
group is what keeps it to one stack. pytest-xdist's own grouping no longer takes effect
with pytest 9.2 (tests/conftest.py says why); this runs a small suite under `pytest -n 2
--dist=loadgroup` with the project's conftest hook and checks where each test ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

GROUPED = """
import os, time
import pytest

pytestmark = pytest.mark.xdist_group("shared-stack")

@pytest.mark.parametrize("i", range(4))
def test_grouped(i):
    time.sleep(0.1)
    with open(os.environ["WHERE"], "a") as out:
        out.write(f"{os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_a_group_split_over_two_files_runs_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    # The project's collection hook, imported into the suite's own conftest.
    (suite / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
    )
    for name in ("test_one.py", "test_two.py"):
        (suite / name).write_text(GROUPED)
    (suite / "test_free.py").write_text(
        "import pytest, time\n\n@pytest.mark.parametrize('i', range(6))\n"
        "def test_free(i):\n    time.sleep(0.1)\n"
    )
    where = tmp_path / "where.txt"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist=loadgroup",
         "-p", "no:cacheprovider", "-p", "no:cloudcoil", "--rootdir", str(suite), str(suite)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "WHERE": str(where)},
        capture_output=True, text=True, timeout=120, cwd=suite,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    workers = where.read_text().split()
    assert len(workers) == 8, workers
    assert len(set(workers)) == 1, f"the group ran on {sorted(set(workers))}"
