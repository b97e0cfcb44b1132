"""Which ``Host`` names are answered by default (issue 10)."""

from __future__ import annotations

import pytest

from qasdk_server.sites import _hostname, _Names, default_hosts, is_loopback


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_loopback_binds(bind: str, loopback: bool) -> None:
    assert is_loopback(bind) is loopback
    hosts = default_hosts(bind)
    if loopback:
        assert hosts is not None
        assert {"localhost", "127.0.0.1", "::1", bind} <= set(hosts)
    else:
        assert hosts is None  # any name: set server.allowed_hosts on a network


def test_names_with_wildcards_and_ports() -> None:
    names = _Names(["localhost", "*.example.com", "[::1]"])
    assert _hostname("LOCALHOST:8000") in names
    assert _hostname("api.example.com:443") in names
    assert _hostname("[::1]:8000") in names
    assert _hostname("example.com") not in names
    assert _hostname("evilexample.com") not in names
    assert _hostname("") not in names
    assert _hostname("anything") in _Names(["*"])
