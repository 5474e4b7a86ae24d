"""``marketq pipeline run|status|cancel|retry``: pipeline runs over the API.

``--wait`` follows a run to its end as a live tree of its steps (each under the step it
waits for), and exits like ``marketq run --wait``: 0 when the run succeeded, 1 when it
ended FAILED or REVOKED, 4 when the wait timed out.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.live import Live
from rich.markup import escape
from rich.tree import Tree

from marketq.cli.client import (
    DEFAULT_API_URL,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_RUN_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    ApiCallError,
    ApiClient,
    api_session,
    report,
)
from marketq.cli.options import EXIT_CODES_HELP, ApiKeyOption, ApiUrlOption, JsonOption
from marketq.cli.output import console, emit, err_console
from marketq.cli.params import parse_params
from marketq.common.catalog import CATALOG
from marketq.common.pipelines import PIPELINES, UnknownPipelineError

pipeline_app = typer.Typer(
    help="Pipeline runs: catalog jobs in dependency order, tracked as one run.",
    no_args_is_help=True,
)

FINISHED = frozenset({"SUCCESS", "FAILED", "REVOKED"})
STYLE = {
    "SUCCESS": "green",
    "FAILED": "red",
    "REVOKED": "red",
    "RUNNING": "yellow",
    "QUEUED": "cyan",
    "PENDING": "dim",
}
PipelineRunIdArgument = Annotated[str, typer.Argument(metavar="ID", help="Pipeline run id.")]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Follow the run to its end as a live tree of its steps.")
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds --wait waits.")]


def _state(state: Any) -> str:
    text = escape(str(state))
    style = STYLE.get(str(state))
    return f"[{style}]{text}[/]" if style else text


def step_tree(body: dict[str, Any]) -> Tree:
    """The run as a tree: each step under the last step it waits for."""
    progress = body.get("progress") or {}
    root = Tree(
        f"[bold]{escape(str(body.get('pipeline')))}[/] {escape(str(body.get('pipeline_run_id')))} "
        f"{_state(body.get('state'))} {progress.get('current')}/{progress.get('total')}"
        + (" (cancel requested)" if body.get("cancel_requested") else "")
    )
    nodes: dict[str, Tree] = {}
    for step in body.get("steps", []):
        after = step.get("after") or []
        parent = nodes.get(after[-1], root) if after else root
        label = (
            f"{escape(str(step.get('name')))} ({escape(str(step.get('job')))}) "
            f"{_state(step.get('state'))}"
        )
        if int(step.get("attempt") or 1) > 1:
            label += f" attempt {step['attempt']}"
        if len(after) > 1:
            label += f" [dim](after {escape(', '.join(after))})[/]"
        if step.get("error"):
            label += f"\n[red]{escape(str(step['error'])[:300])}[/]"
        nodes[str(step.get("name"))] = parent.add(label)
    return root


def _params(name: str, pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """``k=v`` pairs typed by the first step whose job takes the field."""
    params: dict[str, Any] = json.loads(raw_json) if raw_json else {}
    if not isinstance(params, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    try:
        spec = PIPELINES[name]
    except UnknownPipelineError:
        spec = None  # the API answers 404
    for pair in pairs:
        key = pair.partition("=")[0]
        job = next(
            (
                CATALOG[s.job]
                for s in (spec.steps if spec else ())
                if key in CATALOG[s.job].params.model_fields
            ),
            None,
        )
        if job is None:
            value = pair.partition("=")[2]
            if not key or "=" not in pair:
                raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
            params[key] = json.loads(value) if value[:1] in '[{"' and value else value
        else:
            params.update(parse_params(job, [pair], None))
    return params


def _follow(client: ApiClient, body: dict[str, Any], timeout: float, *, as_json: bool) -> int:
    run_id = str(body["pipeline_run_id"])
    path = f"/api/v1/pipeline-runs/{quote(run_id, safe='')}"
    deadline = time.monotonic() + timeout
    last_text: str | None = None
    last_failure: ApiCallError | None = None
    with Live(step_tree(body), console=err_console, transient=as_json) as live:
        while str(body.get("state")) not in FINISHED:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(0.5, remaining))
            try:
                response = client.call("GET", path)
            except ApiCallError as failure:
                # The run goes on while the API or Redis blinks: keep asking until the deadline.
                if failure.exit_code not in (EXIT_UNAVAILABLE, EXIT_RATE_LIMITED):
                    raise
                last_failure = failure
                continue
            last_failure, last_text, body = None, response.text, response.json()
            live.update(step_tree(body))
    state = str(body.get("state"))
    if state not in FINISHED:
        if last_failure is not None:
            raise last_failure
        if as_json and last_text is not None:
            emit(last_text)
        err_console.print(
            f"[yellow]still {escape(state)} after {timeout:g} s[/]: {run_id} (the run goes on; "
            f"follow it with `marketq pipeline status {run_id}`)",
            highlight=False,
        )
        return EXIT_TIMEOUT
    if as_json:
        emit(last_text or json.dumps(body))
    return EXIT_OK if state == "SUCCESS" else EXIT_RUN_FAILED


@pipeline_app.command("run", epilog=EXIT_CODES_HELP)
def run(
    name: Annotated[str, typer.Argument(metavar="PIPELINE", help="Pipeline name.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="key=value for the run's steps; repeat."),
    ] = None,
    params_json: Annotated[
        str | None, typer.Option("--params-json", metavar="PARAMS", help="All params as JSON.")
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a pipeline run (POST /api/v1/pipelines/PIPELINE/runs); --wait follows it."""
    try:
        params = _params(name, param or [], params_json)
    except (typer.BadParameter, json.JSONDecodeError) as exc:
        report(ApiCallError(EXIT_INVALID, f"invalid parameters: {exc}"), as_json=False)
        raise typer.Exit(EXIT_INVALID) from None
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.call(
            "POST", f"/api/v1/pipelines/{quote(name, safe='')}/runs", body={"params": params}
        )
        body = response.json()
        line = f"started [bold]{escape(str(body['pipeline_run_id']))}[/] ({escape(name)})"
        if not wait:
            if as_json:
                emit(response.text)
            else:
                console.print(line, highlight=False)
            return
        err_console.print(line, highlight=False)
        code = _follow(client, body, timeout, as_json=as_json)
    raise typer.Exit(code)


@pipeline_app.command("status", epilog=EXIT_CODES_HELP)
def status(
    run_id: PipelineRunIdArgument,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """A pipeline run and its steps (GET /api/v1/pipeline-runs/ID)."""
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.get(f"/api/v1/pipeline-runs/{quote(run_id, safe='')}")
        if wait:
            raise typer.Exit(_follow(client, response.json(), timeout, as_json=as_json))
    if as_json:
        emit(response.text)
    else:
        console.print(step_tree(response.json()))


def _change(
    action: str, run_id: str, api_url: str, api_key: str | None, as_json: bool, **query: Any
) -> None:
    with api_session(api_url, api_key, as_json=as_json) as client:
        response = client.call(
            "POST", f"/api/v1/pipeline-runs/{quote(run_id, safe='')}/{action}", params=query
        )
    if as_json:
        emit(response.text)
    else:
        console.print(step_tree(response.json()))


@pipeline_app.command("cancel", epilog=EXIT_CODES_HELP)
def cancel(
    run_id: PipelineRunIdArgument,
    terminate: Annotated[
        bool, typer.Option("--terminate", help="Also kill the step that is running.")
    ] = False,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a pipeline run: queued steps revoked, no more published (POST .../cancel)."""
    _change("cancel", run_id, api_url, api_key, as_json, terminate="true" if terminate else None)


@pipeline_app.command("retry", epilog=EXIT_CODES_HELP)
def retry(
    run_id: PipelineRunIdArgument,
    api_url: ApiUrlOption = DEFAULT_API_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run a FAILED or REVOKED pipeline run from its failed steps (POST .../retry)."""
    _change("retry", run_id, api_url, api_key, as_json)
