"""OpenTelemetry traces: set up from the standard ``OTEL_*`` variables, off by default.

Tracing is **on** in a process only when all of these hold:

* ``OTEL_SDK_DISABLED`` is not ``true``;
* ``OTEL_TRACES_EXPORTER`` is not ``none``;
* an exporter is asked for: ``OTEL_TRACES_EXPORTER`` names ``otlp`` or ``console``, or,
  when it is unset, ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
  is set (the specification's default exporter is ``otlp``; marketq waits for an
  endpoint so that an unconfigured process neither exports nor pays for tracing).

The OTLP exporter speaks HTTP/protobuf (``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` unset
or ``http/protobuf``; any other value is refused with an error log and tracing stays
off). Endpoint, headers, timeout, compression and certificates, the sampler
(``OTEL_TRACES_SAMPLER``/``_ARG``), the batch processor (``OTEL_BSP_*``) and
``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` are read by the SDK itself.

When tracing is off nothing from the SDK is imported, ``inject_trace_headers`` returns
after one boolean test and ``span`` hands back a shared no-op context manager.

The context travels in the task message's headers as W3C ``traceparent``/``tracestate``
(Celery copies message headers onto ``task.request``, where the worker reads them).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

SUPPORTED_PROTOCOL = "http/protobuf"
_TRUE = {"true", "1", "yes", "on"}

_enabled = False
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_inject: Callable[[MutableMapping[str, Any]], None] | None = None
_NO_SPAN: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """What the environment asks for; ``None`` from ``tracing_config`` means off."""

    exporters: tuple[str, ...]  # "otlp" and/or "console"


def tracing_config(environ: Mapping[str, str] | None = None) -> TracingConfig | None:
    """Decide from ``OTEL_*`` whether tracing is on (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if raw:
        names = tuple(n.strip() for n in raw.split(",") if n.strip())
        if "none" in names:
            return None
        unknown = [n for n in names if n not in ("otlp", "console")]
        if unknown:
            log.error(
                "OTEL_TRACES_EXPORTER: unsupported exporter(s) %s (otlp, console, none); "
                "tracing is off",
                ", ".join(unknown),
            )
            return None
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        names = ("otlp",)
    else:
        return None
    if "otlp" in names:
        for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = env.get(var, "").strip()
            if protocol:
                if protocol != SUPPORTED_PROTOCOL:
                    log.error(
                        "%s=%s is not supported (only %s); tracing is off",
                        var,
                        protocol,
                        SUPPORTED_PROTOCOL,
                    )
                    return None
                break
    return TracingConfig(exporters=names)


def enabled() -> bool:
    return _enabled


def setup_tracing(
    service_name: str,
    attributes: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Install this process's tracer provider if ``OTEL_*`` asks for one; True when on.

    Call once per process, after any fork (a prefork child calls it from
    ``worker_process_init``: the batch processor's export thread does not survive a fork).
    ``service_name`` is the default ``service.name``; ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` override it and ``attributes``.
    """
    global _enabled, _provider, _tracer, _inject
    if _enabled:
        return True
    config = tracing_config(environ)
    if config is None:
        return False

    from opentelemetry import propagate, trace
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    defaults = {"service.name": service_name, **(attributes or {})}
    # Resource.create puts its argument above the environment; merging the environment
    # back on top lets OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win, as the spec says.
    resource = Resource.create(defaults).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
    if "otlp" in config.exporters:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in config.exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("marketq")
    _inject = propagate.inject
    _enabled = True
    log.info(
        "tracing on: service %s, exporters %s",
        resource.attributes.get("service.name"),
        ",".join(config.exporters),
    )
    return True


def shutdown_tracing() -> None:
    """Export what is buffered and stop (a prefork child calls it before it exits)."""
    global _enabled
    if _provider is not None and _enabled:
        _enabled = False
        _provider.shutdown()


def inject_trace_headers(headers: MutableMapping[str, Any]) -> None:
    """Add the current trace context (W3C ``traceparent``) to a message's headers.

    Called wherever a task message's headers are built; one boolean test when off.
    """
    if _enabled and _inject is not None:
        _inject(headers)


def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, producer: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """A span around a block (the current span becomes its parent); a no-op when off."""
    if not _enabled or _tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import SpanKind

    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    return _tracer.start_as_current_span(
        name, kind=SpanKind.PRODUCER if producer else SpanKind.INTERNAL, attributes=clean
    )


def current_trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None when none."""
    if not _enabled:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


__all__ = [
    "SUPPORTED_PROTOCOL",
    "TracingConfig",
    "current_trace_ids",
    "enabled",
    "inject_trace_headers",
    "setup_tracing",
    "shutdown_tracing",
    "span",
    "tracing_config",
]
