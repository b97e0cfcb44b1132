"""The ``traceparent`` a request brings: kept when valid, ignored otherwise (W3C)."""

from __future__ import annotations

import pytest

from qasdk_server.telemetry.carrier import trace_carrier

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_and_tracestate_are_kept() -> None:
    assert trace_carrier({"traceparent": VALID, "tracestate": "vendor=a,other=b"}) == {
        "traceparent": VALID,
        "tracestate": "vendor=a,other=b",
    }
    assert trace_carrier({"traceparent": VALID.upper()}) == {"traceparent": VALID}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  # not hex
        VALID + "-extra",
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str) -> None:
    assert trace_carrier({"traceparent": value}) is None


def test_a_tracestate_without_a_traceparent_or_unprintable_is_dropped() -> None:
    assert trace_carrier({"tracestate": "vendor=a"}) is None
    assert trace_carrier({"traceparent": VALID, "tracestate": "a=\x01"}) == {"traceparent": VALID}
    assert trace_carrier({"traceparent": VALID, "tracestate": "a" * 513}) == {"traceparent": VALID}
