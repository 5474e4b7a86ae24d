"""marketq's command line: an HTTP client of the API, rich tables, one module per command
group (``marketq.cli.main`` holds the typer app)."""
