"""Completion webhooks: ``callback_url`` checked at submit, POSTed signed when the task ends.

The outbox is :mod:`qasdk.store.webhooks`'s table; here are the URL and host rules
(``target``), the payload and its signature (``payload``) and the deliverer every
worker process runs (``deliver``).
"""

from qasdk_server.webhooks.deliver import Deliverer
from qasdk_server.webhooks.payload import WebhookPayload, sign
from qasdk_server.webhooks.target import HostPolicy, check_callback_url, masked_url, state_of

__all__ = [
    "Deliverer",
    "HostPolicy",
    "WebhookPayload",
    "check_callback_url",
    "masked_url",
    "sign",
    "state_of",
]
