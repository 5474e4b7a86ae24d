"""Webhook URL checks, signatures and subscriptions (pure; no network but name lookups)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from marketq.common.settings import ApiKey, Settings, WebhookTarget
from marketq.common.webhooks import (
    WebhookUrlError,
    check_url,
    resolve_notify,
    signature,
    verify,
)


def settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "webhook_secret": "s3cret",
        "webhook_allowed_hosts": "hooks.example.com,*.internal.example,127.0.0.1,169.254.*",
    }
    return Settings(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata, even when allowed
        "http://169.254.10.1/",  # link-local
        "http://[fe80::1]/",
        "http://other.example.org/hook",  # not an allowed host
        "file:///etc/passwd",
        "http://user:pw@hooks.example.com/",
        "http:///no-host",
    ],
)
def test_refused_urls_name_the_field(url: str) -> None:
    with pytest.raises(WebhookUrlError) as refused:
        check_url(url, settings(webhook_allowed_hosts="hooks.example.com,169.254.*,fe80::1"))
    assert refused.value.field == "notify.url"


def test_allowed_patterns_and_loopback_when_configured() -> None:
    check_url("https://hooks.example.com/x", settings(), resolve=False)
    check_url("https://a.internal.example/x", settings(), resolve=False)
    check_url("http://127.0.0.1:8080/hook", settings())
    with pytest.raises(WebhookUrlError):
        check_url("http://127.0.0.1:8080/hook", settings(webhook_allowed_hosts=""))


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"id":"e1"}'
    header = signature("s3cret", 1_700_000_000, body)
    digest = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"
    assert verify("s3cret", header, body, now=1_700_000_100)
    assert not verify("s3cret", header, body + b" ", now=1_700_000_100)  # body changed
    assert not verify("other", header, body, now=1_700_000_100)  # wrong secret
    assert not verify("s3cret", header, body, now=1_700_000_000 + 301)  # replayed late


def test_named_targets_come_from_the_api_key() -> None:
    key = ApiKey(
        name="svc",
        sha256="0" * 64,
        scopes=("trigger",),
        webhooks={"ops": WebhookTarget(url="http://127.0.0.1/h", events=("FAILED", "FAILURE"))},
    )
    run = resolve_notify({"target": "ops"}, key, settings(), "run")
    assert run is not None and (run.url, run.events) == ("http://127.0.0.1/h", ("FAILURE",))
    pipeline = resolve_notify({"target": "ops"}, key, settings(), "pipeline_run")
    assert pipeline is not None and pipeline.events == ("FAILED",)
    with pytest.raises(WebhookUrlError) as missing:
        resolve_notify({"target": "nope"}, key, settings(), "run")
    assert missing.value.field == "notify.target"
    with pytest.raises(WebhookUrlError) as wrong_state:
        resolve_notify({"url": "http://127.0.0.1/h", "events": ["FAILED"]}, key, settings(), "run")
    assert wrong_state.value.field == "notify.events"
    with pytest.raises(WebhookUrlError) as disabled:
        resolve_notify({"url": "http://127.0.0.1/h"}, key, settings(webhook_secret=None), "run")
    assert disabled.value.field == "notify"
