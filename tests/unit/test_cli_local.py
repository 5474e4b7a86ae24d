"""The `marketq` command line without an API: options, names and rendering in-process
(tests/integration/test_cli_api.py drives it against a real API)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from marketq.cli.lookup import did_you_mean
from marketq.cli.main import app
from marketq.cli.render import priorities

runner = CliRunner()


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0
        assert result.stdout.strip() == f"marketq {version('marketq-cli')}"


def test_did_you_mean_names_the_close_ones_only() -> None:
    jobs = ["stock_quotes", "options_chain", "news", "health_check"]
    assert did_you_mean("stock_quote", jobs) == "did you mean 'stock_quotes'?"
    assert did_you_mean("helth_check", jobs) == "did you mean 'health_check'?"
    assert did_you_mean("zzz", jobs) is None


@pytest.mark.parametrize(
    ("by_priority", "shown"),
    [
        ({"0": 0, "3": 0, "6": 0, "9": 0}, "-"),
        ({"0": 5, "3": 0, "6": 0, "9": 1}, "0-2: 5, 9: 1"),
        ({"0": 0, "3": 2, "6": 4, "9": 0}, "3-5: 2, 6-8: 4"),
        ({}, "-"),
    ],
)
def test_queue_priorities_read_as_ranges_with_only_what_waits(
    by_priority: dict[str, int], shown: str
) -> None:
    assert priorities(by_priority) == shown


def test_schedule_every_zero_is_refused_before_any_request() -> None:
    result = runner.invoke(app, ["schedule", "news", "--every", "0", "--api-url", "http://x:1"])
    assert result.exit_code == 2
    assert "--every" in result.output and "greater than or equal to 1" in result.output


def test_submit_takes_params_json_and_json_means_output() -> None:
    shown = runner.invoke(app, ["submit", "--help"], env={"COLUMNS": "120"}).output
    assert "--params-json" in shown and "--json" in shown and "Output" in shown


def test_status_can_follow_a_run() -> None:
    shown = runner.invoke(app, ["status", "--help"], env={"COLUMNS": "120"}).output
    assert "--wait" in shown and "--follow" in shown


@pytest.mark.parametrize("command", ["runs", "schedule", "submit", "status", "cancel", "queues"])
def test_flags_are_not_shown_as_bool(command: str) -> None:
    shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).output
    assert "<bool>" not in shown, shown  # --help itself included
    assert "<int>" in shown or "<float>" in shown or "<str>" in shown  # values keep types
