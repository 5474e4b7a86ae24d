"""Shared fixtures: real servers on free loopback ports, stopped by PID."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.workers",
    "tests.fixtures.api",
    "tests.fixtures.beat",
    "tests.fixtures.otlp",
]
