"""Rich tables for what the API returns: the views' own layouts, and a generic
rendering (lists of objects as rows, objects as fields) for any other shape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from marketq.cli.output import console


def utc_time(value: Any) -> str:
    """ISO timestamps shortened to seconds, in UTC."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def cell(value: Any) -> str:
    """One value as table text: blanks for null, yes/no, compact JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return utc_time(value) if _ISO_DATETIME.match(value) else value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def records_table(records: list[dict[str, Any]], title: str | None) -> Table:
    """Rows of JSON objects as a table; columns are the union of keys, first seen first."""
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for record in records:
        table.add_row(*(escape(cell(record.get(column))) for column in columns))
    return table


def mapping_table(data: Mapping[str, Any], title: str | None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(escape(key.replace("_", " ")), escape(cell(value)))
    return table


def render(data: Any, title: str) -> None:
    """Any JSON the API returns, as tables: lists of objects as rows, objects as fields."""
    if _is_records(data):
        if data:
            console.print(records_table(data, title))
        else:
            console.print(f"{title}: none")
        return
    if isinstance(data, dict):
        fields = {k: v for k, v in data.items() if not (_is_records(v) and v)}
        tables = {k: v for k, v in data.items() if _is_records(v) and v}
        if fields:
            console.print(mapping_table(fields, title))
        for key, rows in tables.items():
            console.print(records_table(rows, f"{title}: {key.replace('_', ' ')}"))
        return
    console.print(escape(cell(data)))


def progress_text(progress: Any) -> str:
    if not isinstance(progress, dict):
        return ""
    current, total = progress.get("current"), progress.get("total")
    if current is None and total is None:
        return ""
    return f"{current if current is not None else '?'}/{total if total is not None else '?'}"


STATE_STYLE = {
    "SUCCESS": "green",
    "FAILURE": "red",
    "REVOKED": "red",
    "LOST": "red",
    "RETRY": "yellow",
}


def styled_state(state: Any) -> str:
    text = escape(str(state or ""))
    style = STATE_STYLE.get(str(state))
    return f"[{style}]{text}[/]" if style else text


def took(run: dict[str, Any]) -> str:
    """Enqueue to finish, for finished runs."""
    try:
        start = datetime.fromisoformat(str(run["enqueued_at"]))
        end = datetime.fromisoformat(str(run["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return ""
    return age((end - start).total_seconds())


def instant(value: Any) -> str:
    """An API instant ``{"exchange_time", "utc"}`` in the exchange's time, to the minute."""
    raw = value.get("exchange_time") if isinstance(value, dict) else value
    if not raw:
        return ""
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return str(raw)
    return parsed.strftime("%a %Y-%m-%d %H:%M %z")


def age(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


JOBS_DESCRIPTION_MIN = 20  # narrower room for it leaves the description out


def render_jobs(jobs: list[dict[str, Any]]) -> None:
    """One line per job at any width: names never wrap; the description is cut to the
    room left, or left out (``marketq jobs --json`` and the API have it whole)."""
    rows = []
    for job in jobs:
        schedule = job.get("schedule") or "on demand"
        if job.get("trading_days_only"):
            schedule += " (trading days)"
        flags = "yes" if job.get("market_hours_only") else ""
        rows.append([str(job.get("name", "")), str(job.get("queue", "")), schedule, flags])

    def build(description_width: int | None) -> Table:
        table = Table(title="marketq jobs", title_justify="left", box=box.SIMPLE_HEAD)
        for header in ("job", "queue", "schedule", "mkt hrs"):
            table.add_column(header, no_wrap=True)
        if description_width:
            table.add_column(
                "description", no_wrap=True, overflow="ellipsis", max_width=description_width
            )
        for row, job in zip(rows, jobs, strict=True):
            described = [str(job.get("description", ""))] if description_width else []
            table.add_row(*(escape(value) for value in [*row, *described]))
        return table

    room = console.width - _width(build(None)) - 3
    console.print(build(room if room >= JOBS_DESCRIPTION_MIN else None))


SHORT_ID = 8  # the id prefix the progress bar prints and every command accepts
WORKER_MIN = 16  # a narrower worker column says too little to be worth its room


def _width(table: Table) -> int:
    """The width ``table`` takes uncut (measured unbounded: the console's own width would
    cap it)."""
    return Measurement.get(console, console.options.update_width(10_000), table).maximum


def runs_table(runs: list[dict[str, Any]], title: str | None = None) -> Table:
    """One line per run at any width. Ids and job names are never cut: a narrow terminal
    gets the 8-character ids, then the worker (cut with an ellipsis to the room left) and
    tries, progress and queue as room allows."""
    with_progress = any(progress_text(run.get("progress")) for run in runs)
    optional = ["tries", *(["progress"] if with_progress else []), "queue", "worker"]

    def build(columns: list[str], short_ids: bool, worker_width: int | None = None) -> Table:
        table = Table(
            title=title,
            title_justify="left",
            caption="times in UTC",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for column in columns:
            right = column in ("progress", "tries", "took")
            if column == "worker":
                table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=worker_width)
            else:
                table.add_column(column, no_wrap=True, justify="right" if right else "left")
        for run in runs:
            table.add_row(*(_run_cell(run, column, short_ids) for column in columns))
        return table

    essential = ["run", "job", "state", "enqueued", "took"]
    # Whole ids only where the worker fits beside them.
    short_ids = _width(build(essential, short_ids=False)) + 3 + WORKER_MIN > console.width
    columns = list(essential)
    # The worker is worth more than the rest: they go in only where they leave its room.
    for column in optional[:-1]:
        trial = _ordered([*columns, column])
        if _width(build(trial, short_ids)) + 3 + WORKER_MIN <= console.width:
            columns = trial
    room = console.width - _width(build(columns, short_ids)) - 3
    if room >= WORKER_MIN:
        return build([*columns, "worker"], short_ids, worker_width=room)
    return build(columns, short_ids)


RUN_COLUMNS = ("run", "job", "queue", "state", "progress", "tries", "enqueued", "took", "worker")


def _ordered(columns: list[str]) -> list[str]:
    return [column for column in RUN_COLUMNS if column in columns]


def _run_cell(run: dict[str, Any], column: str, short_ids: bool) -> str:
    if column == "run":
        run_id = str(run.get("run_id", ""))
        return escape(run_id[:SHORT_ID] if short_ids else run_id)
    if column == "state":
        return styled_state(run.get("state"))
    if column == "progress":
        return progress_text(run.get("progress"))
    if column == "tries":
        return cell(run.get("attempts"))
    if column == "enqueued":
        return utc_time(run.get("enqueued_at")).removesuffix("Z")
    if column == "took":
        return took(run)
    return escape(cell(run.get(column)))


def print_status(run: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("run", escape(str(run.get("run_id", ""))))
    table.add_row("job", escape(str(run.get("job", ""))))
    table.add_row("queue", escape(str(run.get("queue", ""))))
    table.add_row("state", styled_state(run.get("state")))
    if run.get("progress"):
        table.add_row("progress", progress_text(run.get("progress")))
    table.add_row("attempts", cell(run.get("attempts")))
    for key in ("worker", "enqueued_at", "eta", "received_at", "started_at", "finished_at"):
        if run.get(key):
            label = key.removesuffix("_at") + (" (UTC)" if key.endswith("_at") else "")
            table.add_row(label, escape(cell(run[key])))
    table.add_row("params", escape(cell(run.get("params") or {})))
    if run.get("error"):
        table.add_row("error", f"[red]{escape(str(run['error']))}[/]")
    console.print(table)
    if run.get("result") is not None:
        console.print("result:", style="bold")
        console.print_json(data=run["result"])


def priorities(by_priority: dict[str, Any]) -> str:
    """Waiting messages by priority, only where some wait: ``0-2: 5, 9: 1`` (``-``: none).

    The API counts Celery's priority lists, one per step (0, 3, 6, 9); a step holds its
    priority and the ones below the next step. Priority 0 is served first."""
    steps = sorted(int(step) for step in by_priority)
    parts = []
    for index, step in enumerate(steps):
        waiting = by_priority.get(str(step), by_priority.get(step))  # type: ignore[call-overload]
        if not isinstance(waiting, int) or waiting <= 0:
            continue
        top = steps[index + 1] - 1 if index + 1 < len(steps) else step
        parts.append(f"{step}-{top}: {waiting}" if top > step else f"{step}: {waiting}")
    return ", ".join(parts) or "-"


def render_queues(body: dict[str, Any]) -> None:
    table = Table(title=f"queues (read {utc_time(body.get('read_at'))})", title_justify="left")
    table.add_column("queue", no_wrap=True)
    table.add_column("waiting", justify="right")
    table.add_column("by priority (0 first)")
    table.add_column("oldest waiting", justify="right")
    table.add_column("reserved", justify="right")
    with_consumers = any(q.get("consumers") is not None for q in body["queues"])
    if with_consumers:
        table.add_column("consumers", justify="right")
    for queue in body["queues"]:
        by_priority = queue.get("by_priority") or {}
        row = [
            escape(str(queue.get("name", ""))),
            cell(queue.get("length")),
            priorities(by_priority),
            age(queue.get("oldest_age_seconds")),
            "?" if queue.get("reserved") is None else cell(queue.get("reserved")),
        ]
        if with_consumers:
            consumers = queue.get("consumers")
            row.append("[yellow]0[/]" if consumers == 0 else cell(consumers))
        table.add_row(*row)
    console.print(table)
    console.print(f"reserved by workers in all: {cell(body.get('reserved_total'))}")


WORKER_COLUMNS = ("worker", "queues", "pool", "active", "reserved", "processed", "up", "pid")
WORKER_NAME_MIN = 24  # a worker name cut shorter no longer tells pods apart


def _workers_table(title: str, workers: list[dict[str, Any]]) -> Table:
    """One line per worker: the name gets the room the other columns leave (cut with an
    ellipsis); pid, processed, uptime and pool size go first when the room is short."""
    values = {
        "worker": lambda w: escape(str(w.get("name", ""))),
        "queues": lambda w: escape(cell(w.get("queues"))),
        "pool": lambda w: cell(w.get("pool_size")),
        "active": lambda w: cell(w.get("active")),
        "reserved": lambda w: cell(w.get("reserved")),
        "processed": lambda w: cell(w.get("processed")),
        "up": lambda w: age(w.get("uptime_seconds")),
        "pid": lambda w: cell(w.get("pid")),
    }

    def build(columns: list[str], name_width: int | None = None) -> Table:
        table = Table(title=title, title_justify="left")
        for column in columns:
            if column == "worker":
                table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=name_width)
            else:
                table.add_column(
                    column, no_wrap=True, justify="left" if column == "queues" else "right"
                )
        for worker in workers:
            table.add_row(*(values[column](worker) for column in columns))
        return table

    columns = ["queues", "active", "reserved"]
    for column in ("pool", "up", "processed", "pid"):
        trial = [c for c in WORKER_COLUMNS if c in (*columns, column)]
        if _width(build(trial)) + 3 + WORKER_NAME_MIN <= console.width:
            columns = trial
    room = max(console.width - _width(build(columns)) - 3, WORKER_NAME_MIN)
    return build(["worker", *columns], name_width=room)


def render_workers(body: dict[str, Any]) -> None:
    cached = body.get("cache_seconds")
    title = f"workers (asked {utc_time(body.get('fetched_at'))}, cached {cell(cached)} s)"
    if not body["workers"]:
        console.print(f"{title}: [yellow]no worker answered[/]")
    else:
        console.print(_workers_table(title, body["workers"]))
    per_queue = Table(title="consumers per queue", title_justify="left")
    for column in ("queue", "workers", "pool", "names"):
        per_queue.add_column(column, justify="right" if column in ("workers", "pool") else "left")
    for queue in body.get("queues") or []:
        count = queue.get("workers")
        per_queue.add_row(
            escape(str(queue.get("name", ""))),
            "[yellow]0[/]" if count == 0 else cell(count),
            cell(queue.get("pool_size")),
            escape(cell(queue.get("worker_names"))),
        )
    console.print(per_queue)


def render_schedules(body: dict[str, Any]) -> None:
    title = (
        f"schedules on {escape(str(body.get('exchange', '')))} "
        f"({escape(str(body.get('timezone', '')))}) after {instant(body.get('as_of'))}"
        if body.get("exchange")
        else "schedule entry"
    )
    scheduler = body.get("scheduler") or {}
    if scheduler.get("holder"):
        holder, tick = escape(str(scheduler["holder"])), utc_time(scheduler.get("last_tick"))
        title += f"; beat {holder} ticked {tick}"
    elif scheduler:
        title += "; [yellow]no beat holds the lock[/]"
    table = Table(title=title, title_justify="left")
    table.add_column("entry", no_wrap=True)
    table.add_column("queue", no_wrap=True)
    table.add_column("when")
    table.add_column("calendar")
    table.add_column("next fires (exchange time)")
    table.add_column("last fire")
    for entry in body["schedules"]:
        when = entry.get("cron") or f"every {entry.get('every_seconds')} s"
        flags = [
            label
            for key, label in (
                ("market_hours_only", "market hours"),
                ("trading_days_only", "trading days"),
            )
            if entry.get(key)
        ]
        name = str(entry.get("name") or entry.get("job", ""))
        if entry.get("job") and entry.get("job") != name:
            name += f" ({entry['job']})"
        if entry.get("enabled") is False:
            name += " [yellow]disabled[/]"
        if entry.get("source") == "runtime":
            flags.append("edited")
        last = entry.get("last_fire") or {}
        table.add_row(
            escape(name) if "[" not in name else name,
            escape(str(entry.get("queue", ""))),
            escape(when),
            ", ".join(flags),
            "\n".join(instant(fire) for fire in entry.get("next_fires") or []),
            utc_time(last.get("fire_at")) if last else "",
        )
    console.print(table)


def render_market(body: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_row("exchange", f"{escape(str(body.get('exchange')))} ({body.get('timezone')})")
    table.add_row("now", instant(body.get("now")))
    table.add_row("market", "[green]open[/]" if body["is_open"] else "[yellow]closed[/]")
    session = body.get("session")
    if isinstance(session, dict):
        early = " (early close)" if session.get("early_close") else ""
        table.add_row(
            "session",
            f"{session.get('day')}: {instant(session.get('open'))} - "
            f"{instant(session.get('close'))}{early}",
        )
    table.add_row("next open", instant(body.get("next_open")))
    table.add_row("next close", instant(body.get("next_close")))
    console.print(table)


def render_view(body: Any, key: str, title: str, renderer: Callable[[Any], None]) -> None:
    """The view's own layout; any other shape (another API version) generically."""
    if isinstance(body, dict) and key in body:
        renderer(body)
    else:
        render(body, title)
