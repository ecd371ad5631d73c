"""Host ports for the guests' forwarded SSH."""

from __future__ import annotations

import socket

from kiln.compute.ports import pick_free_port, port_is_free


def test_picked_port_can_be_bound_and_a_bound_one_is_not_free() -> None:
    port = pick_free_port()
    assert port_is_free(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert not port_is_free(port)


def test_excluded_ports_are_not_picked() -> None:
    first = pick_free_port()
    for _ in range(20):
        assert pick_free_port(exclude={first}) != first
