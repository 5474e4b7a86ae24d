"""Settings come from MARKETQ_ variables (or mounted files) and are all documented."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from marketq.common.reference_docs import extract, render_settings_table
from marketq.common.settings import QueueOptions, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_table_is_the_generated_one() -> None:
    committed = extract(DOC.read_text(encoding="utf-8"), "settings-table")
    assert committed == render_settings_table(), "docs/configuration.md is stale: `make docs`"


@pytest.mark.parametrize("name", sorted(set(Settings.model_fields) - {"queues"}))
def test_every_setting_is_documented_with_its_variable(name: str) -> None:
    assert f"`MARKETQ_{name.upper()}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(QueueOptions.model_fields))
def test_every_queue_option_is_documented_for_every_queue(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    for queue in ("MARKET_HOURS", "DAILY", "PERIODIC", "DEFAULT"):
        assert f"`MARKETQ_QUEUES__{queue}__{name.upper()}`" in text


def test_defaults_run_locally_without_any_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("MARKETQ_"):
            monkeypatch.delenv(key)
    settings = Settings()
    assert settings.database_url.startswith("sqlite:///./var/")
    assert settings.exchange == "XNYS"
    assert settings.timezone == "America/New_York"  # from the exchange calendar
    assert settings.effective_broker_url == settings.effective_result_backend_url


def test_environment_variables_including_nested_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETQ_SYMBOLS", " aapl, msft ,")
    monkeypatch.setenv("MARKETQ_QUEUES__DAILY__CONCURRENCY", "6")
    monkeypatch.setenv("MARKETQ_QUEUES__MARKET_HOURS__MAX_MEMORY_PER_CHILD_KB", "300000")
    monkeypatch.setenv("MARKETQ_BROKER_URL", "rediss://u:p@broker:6380/1")
    settings = Settings()
    assert settings.symbols == ("AAPL", "MSFT")
    assert settings.queues.daily.concurrency == 6
    assert settings.queues.market_hours.max_memory_per_child_kb == 300_000
    assert settings.queues.periodic.concurrency == 2
    assert settings.effective_broker_url == "rediss://u:p@broker:6380/1"
    assert settings.effective_result_backend_url == settings.redis_url


def test_secret_from_mounted_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql+psycopg://app:s3cret@db/marketq\n")
    monkeypatch.delenv("MARKETQ_DATABASE_URL", raising=False)
    monkeypatch.setenv("MARKETQ_DATABASE_URL_FILE", str(secret))
    assert Settings().database_url == "postgresql+psycopg://app:s3cret@db/marketq"
    monkeypatch.setenv("MARKETQ_DATABASE_URL", "sqlite:///x.db")  # the plain variable wins
    assert Settings().database_url == "sqlite:///x.db"


def test_api_keys_from_several_mounted_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The chart mounts the operator's keys and the generated helm-test key as two files.
    key = {"sha256": "a" * 64, "scopes": ["read"]}
    (tmp_path / "ops.json").write_text(json.dumps([{"name": "ops", **key}]))
    (tmp_path / "test.json").write_text(json.dumps([{"name": "helm-test", **key}]))
    monkeypatch.delenv("MARKETQ_API_KEYS", raising=False)
    monkeypatch.setenv(
        "MARKETQ_API_KEYS_FILE", f"{tmp_path / 'ops.json'}{os.pathsep}{tmp_path / 'test.json'}"
    )
    assert [k.name for k in Settings().api_keys] == ["ops", "helm-test"]


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("MARKETQ_REDIS_URL", "http://redis:6379", "redis_url"),
        ("MARKETQ_QUEUES__DAILY__CONCURRENCY", "0", "queues.daily.concurrency"),
        ("MARKETQ_LOG_LEVEL", "LOUD", "log_level"),
        # A provider chain names the bad entry's position.
        ("MARKETQ_PROVIDER", "vendor-x", "provider.0"),
        ("MARKETQ_PROVIDERS__DAILY_BARS", "yahoo,vendor-x", "providers.daily_bars.1"),
        ("MARKETQ_PROVIDERS__JOBS__NEWS", "", "providers.jobs.news"),
        ("MARKETQ_PROVIDERS__JOBS__NEWZ", "yahoo", "providers.jobs"),
    ],
)
def test_invalid_values_are_rejected_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    locations = {".".join(str(p) for p in e["loc"]) for e in error.value.errors()}
    assert field in locations


def test_provider_chains_per_kind_and_per_job_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKETQ_PROVIDERS__DAILY_BARS", "yahoo, alphavantage")
    monkeypatch.setenv("MARKETQ_PROVIDERS__ECONOMIC_SERIES", "fred")
    monkeypatch.setenv("MARKETQ_PROVIDERS__JOBS__NEWS", "alphavantage")
    key_file = tmp_path / "alphavantage"
    key_file.write_text("from-a-mounted-secret\n")
    monkeypatch.setenv("MARKETQ_ALPHAVANTAGE_API_KEY_FILE", str(key_file))
    settings = Settings()
    assert settings.provider == ("synthetic",)  # still the default for everything else
    assert settings.providers.daily_bars == ("yahoo", "alphavantage")
    assert settings.providers.economic_series == ("fred",)
    assert settings.providers.jobs == {"news": ("alphavantage",)}
    key = settings.alphavantage_api_key
    assert key is not None and key.get_secret_value() == "from-a-mounted-secret"
    assert "from-a-mounted-secret" not in repr(settings)
