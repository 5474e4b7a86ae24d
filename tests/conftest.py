"""Shared fixtures: real servers on free loopback ports, stopped by PID."""

pytest_plugins = [
    "tests.fixtures.postgres",
]
