"""The test servers' ports stay clear of the kernel's own choices and of other workers."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures import ports


def test_ports_are_below_the_ephemeral_range_and_never_repeat() -> None:
    chosen = [ports.free_port() for _ in range(50)]
    assert len(set(chosen)) == len(chosen)
    assert all(ports.LOWEST <= p < ports._ephemeral_start() for p in chosen)


def test_xdist_workers_get_disjoint_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    slices = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(ports._worker_slice()))
    assert not (slices[0] & slices[1]) and not (slices[1] & slices[2])
    assert all(len(s) > 1000 for s in slices)


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held, socket.socket() as probe:
        held.bind(("127.0.0.1", 0))
        probe.bind(("127.0.0.1", 0))
        busy, spare = held.getsockname()[1], probe.getsockname()[1]
        probe.close()
        monkeypatch.setattr(ports, "_worker_slice", lambda: [busy, spare])
        monkeypatch.setattr(ports, "_handed_out", set())
        assert ports.free_port() == spare
