"""``python -m marketq.cli``: the ``marketq`` command where no console script is on PATH."""

from marketq.cli.main import app

app(prog_name="marketq")
