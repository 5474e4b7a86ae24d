"""Where output goes: tables and results on stdout, messages on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console()


err_console = Console(stderr=True)


def emit(text: str) -> None:
    """Write JSON text exactly as received, newline-terminated, to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
