"""Job params from the command line: ``k=v`` pairs and a JSON object."""

from __future__ import annotations

import json
from typing import Any

import typer

from marketq.common.catalog import CATALOG, JobSpec, UnknownJobError


def _is_list_field(job: JobSpec, name: str) -> bool:
    schema = job.params.model_json_schema()["properties"].get(name, {})
    variants = schema.get("anyOf", [schema])
    return any(v.get("type") == "array" for v in variants)


def parse_params(job: JobSpec, pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``k=v`` pairs (JSON values allowed; comma lists for list fields) over
    ``--params-json``."""
    params: dict[str, Any] = json.loads(raw_json) if raw_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        if value[:1] in '[{"' and value:
            params[key] = json.loads(value)
        elif _is_list_field(job, key):
            params[key] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            params[key] = value
    return params


def api_params(job_name: str, pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``k=v`` pairs parsed with the local catalog's model (comma lists for list fields)."""
    try:
        spec = CATALOG[job_name]
    except UnknownJobError:
        spec = None
    if spec is not None:
        return parse_params(spec, pairs, raw_json)
    # Not in this library's catalog (an older CLI than the API?): the API decides.
    params: dict[str, Any] = json.loads(raw_json) if raw_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        params[key] = json.loads(value) if value[:1] in '[{"' and value else value
    return params
