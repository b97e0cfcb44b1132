"""Where a webhook may go (SSRF hygiene), how its URL is shown, how it is signed, retried."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.config import WebhooksConfig
from qasdk_server.webhooks import HostPolicy, check_callback_url, masked_url, sign
from qasdk_server.webhooks.deliver import backoff
from qasdk_server.webhooks.target import Refused

ON = WebhooksConfig(secret="s3cret")


def addresses(*text: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(t) for t in text]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "fe80::1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_by_default_only_public_addresses_are_reached(address: str) -> None:
    reason = HostPolicy(()).refusal("hooks.example.com", addresses(address))
    assert reason is not None and "webhooks.allowed_hosts" in reason


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    policy = HostPolicy(())
    assert policy.refusal("x.example.com", addresses("93.184.216.34")) is None
    assert policy.refusal("x.example.com", addresses("93.184.216.34", "10.0.0.1")) is not None


@pytest.mark.parametrize(
    ("patterns", "host", "found", "allowed"),
    [
        (("127.0.0.1",), "127.0.0.1", "127.0.0.1", True),
        (("127.0.0.1",), "localhost", "127.0.0.1", True),
        (("127.0.0.1",), "93.184.216.34", "93.184.216.34", False),  # a list is a list
        (("10.0.0.0/8",), "svc.internal", "10.9.8.7", True),
        (("10.0.0.0/8",), "svc.internal", "11.0.0.1", False),
        (("hooks.internal",), "hooks.internal", "10.0.0.5", True),
        (("hooks.internal",), "HOOKS.internal.", "10.0.0.5", True),
        (("*.example.com",), "a.b.example.com", "10.0.0.5", True),
        (("*.example.com",), "example.com.evil.test", "93.184.216.34", False),
        (("*.example.com",), "notexample.com", "93.184.216.34", False),
        (("*",), "anything.test", "127.0.0.1", True),
    ],
)
def test_allowed_hosts_names_addresses_networks_and_wildcards(
    patterns: tuple[str, ...], host: str, found: str, allowed: bool
) -> None:
    reason = HostPolicy(patterns).refusal(host, addresses(found))
    assert (reason is None) is allowed, reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "must be an http or https URL"),
        ("gopher://example.com/", "must be an http or https URL"),
        ("https://", "must name a host"),
        ("https://example.com:0x50/", "is not a valid URL"),
        ("https://example.com/\r\nX-Injected: 1", "whitespace or control characters"),
        ("http://127.0.0.1/", "non-public address (127.0.0.1)"),
        ("http://localhost:8080/", "non-public address"),
        ("http://a.localhost/", "non-public address"),
        ("http://[::1]/", "non-public address (::1)"),
        ("http://169.254.169.254/latest/meta-data", "non-public address"),
        ("https://example.com/" + "a" * 2048, "at most 2048 characters"),
    ],
)
def test_a_callback_url_is_checked_at_submit(url: str, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        check_callback_url(url, ON)
    assert reason in str(caught.value)


def test_without_a_secret_no_url_is_accepted() -> None:
    with pytest.raises(Refused, match=r"webhooks\.secret"):
        check_callback_url("https://example.com/hook", WebhooksConfig())


def test_a_public_name_is_accepted_and_checked_again_when_sent() -> None:
    assert check_callback_url("https://hooks.example.com/x?y=1", ON) == (
        "https://hooks.example.com/x?y=1"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@example.com/h", "https://****@example.com/h"),
        ("https://token@example.com:8443/h", "https://****@example.com:8443/h"),
        ("https://example.com/h?sig=abc&x=1", "https://example.com/h?****"),
        ("https://example.com/h", "https://example.com/h"),
        ("/elsewhere", "/elsewhere"),
    ],
)
def test_a_shown_url_carries_no_credentials(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**40))
def test_the_signature_is_the_hmac_of_timestamp_dot_body(body: bytes, timestamp: int) -> None:
    expected = hmac.new(b"k", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign("k", timestamp, body) == f"sha256={expected}"


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    config = WebhooksConfig(secret="s", backoff=5, backoff_max=60)
    for attempt, base in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (30, 60), (1000, 60)):
        for _ in range(20):
            assert base * 0.75 <= backoff(config, attempt) <= base * 1.25
