"""The deliverer: sends due webhooks from the outbox, in every worker process.

``webhooks.concurrency`` slots, each on a connection of its own (a slow receiver
never holds one of the pool's): a slot locks the most overdue delivery
(``SKIP LOCKED``), POSTs it, records the attempt and commits, all in one
transaction, so a process killed mid-attempt leaves the row due for the next.
A LISTEN connection wakes the slots when a task ends; a poll every
``webhooks.poll_interval`` seconds covers a missed notification, and a retry's
due time is slept until exactly.

Hostile receivers cannot wedge it: one attempt is bounded as a whole by
``webhooks.timeout`` (a server dripping bytes included), at most
:data:`READ_LIMIT` bytes of an answer are read, and redirects are not followed.
Delivery is at least once: an attempt whose outcome could not be recorded is
made again, with the same ``X-Qasdk-Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime, timezone
from typing import Any, Literal

import httpx
import msgspec
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from qasdk.config import WebhooksConfig
from qasdk.redaction import redact
from qasdk.store import webhooks as store
from qasdk.store.connection import connect
from qasdk.store.webhooks import Due
from qasdk_server.metrics import Metrics
from qasdk_server.webhooks.payload import payload_of, sign
from qasdk_server.webhooks.target import HostPolicy, Refused, delivery_id, masked_url, resolve

__all__ = ["READ_LIMIT", "Deliverer", "backoff"]

logger = logging.getLogger("qasdk.webhooks")

#: Bytes of a receiver's answer that are read (an excerpt goes into the attempt's error).
READ_LIMIT = 1024
_EXCERPT = 200


class Outcome(msgspec.Struct, frozen=True):
    status_code: int | None = None
    error: str | None = None
    #: Retrying will not help (the host is refused): the delivery fails now.
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def backoff(config: WebhooksConfig, attempt: int) -> float:
    """Seconds after failed attempt ``attempt`` (1, 2...): doubling, capped, ±25 % jitter."""
    base = min(config.backoff_max, config.backoff * 2 ** min(attempt - 1, 60))
    return float(base * random.uniform(0.75, 1.25))  # spreading, not secrecy


class Deliverer:
    """The slots and the listener of one process; :meth:`start`, then :meth:`close`."""

    def __init__(self, url: str, config: WebhooksConfig, metrics: Metrics) -> None:
        assert config.secret is not None
        self._url = url
        self.config = config
        self._secret = config.secret
        self._metrics = metrics
        self._policy = HostPolicy(config.allowed_hosts)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            # Not HTTP(S)_PROXY or .netrc: the target is the checked address, nothing else.
            trust_env=False,
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=0),
        )

    @classmethod
    async def start_for(
        cls, url: str, config: WebhooksConfig, metrics: Metrics
    ) -> Deliverer | None:
        """A running deliverer, or ``None`` when webhooks are off (no ``webhooks.secret``)."""
        if config.secret is None:
            logger.debug("webhooks: off (webhooks.secret is not set)")
            return None
        deliverer = cls(url, config, metrics)
        deliverer.start()
        return deliverer

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._listen(), name="qasdk webhooks listen"))
        for n in range(self.config.concurrency):
            self._tasks.append(asyncio.create_task(self._slot(), name=f"qasdk webhooks {n}"))

    async def close(self) -> None:
        """Stop; an attempt under way is abandoned (its row stays due for the next process)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._client.aclose()

    def _ring(self) -> None:
        woken, self._wake = self._wake, asyncio.Event()
        woken.set()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await connect(self._url, autocommit=True)
                async with conn:
                    await store.listen(conn)
                    delay = 0.5
                    self._ring()  # what became due while nobody listened
                    async for _ in conn.notifies():
                        self._ring()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be restarting; listen again
                logger.debug("webhooks: listening failed (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _slot(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await connect(self._url, autocommit=True)
                async with conn:
                    delay = 0.5
                    while True:
                        wake = self._wake  # before looking: a ring from now on is not missed
                        if await self._attempt_one(conn):
                            continue
                        await self._idle(conn, wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be restarting; the row stays due
                logger.warning(
                    "webhooks: %s; delivering again in %.1f s",
                    redact(f"{type(exc).__name__}: {exc}", [self._secret]),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _idle(self, conn: AsyncConnection[DictRow], wake: asyncio.Event) -> None:
        """Until a ring, the next due time, or the poll interval, whichever comes first."""
        due = await store.next_due(conn)
        poll = self.config.poll_interval
        # Due already but not claimable: another slot or process is sending it.
        wait = poll if due is None else min(poll, due if due > 0 else 1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), max(wait, 0.01))

    async def _attempt_one(self, conn: AsyncConnection[DictRow]) -> bool:
        """Send the most overdue delivery and record how it went; ``False``: none was due."""
        async with conn.transaction():
            due = await store.claim_due(conn)
            if due is None:
                return False
            started = datetime.now(timezone.utc)
            outcome = await self._send(due)
            number = due.attempts + 1
            status: Literal["pending", "delivered", "failed"]
            delay = 0.0
            shown = masked_url(due.url)
            if outcome.ok:
                status = "delivered"
                logger.info("webhooks: task %s delivered to %s", due.task_id, shown)
            elif outcome.final or number >= self.config.max_attempts:
                status = "failed"
                logger.warning(
                    "webhooks: task %s: giving up on %s after %d attempts: %s",
                    due.task_id,
                    shown,
                    number,
                    outcome.error,
                )
            else:
                status, delay = "pending", backoff(self.config, number)
                logger.info(
                    "webhooks: task %s: attempt %d to %s failed (%s); again in %.1f s",
                    due.task_id,
                    number,
                    shown,
                    outcome.error,
                    delay,
                )
            attempt: dict[str, Any] = {
                "at": started,
                "status_code": outcome.status_code,
                "error": outcome.error,
            }
            await store.record_attempt(conn, due.task_id, attempt, status=status, delay=delay)
        self._metrics.webhook_deliveries.labels({"pending": "retried"}.get(status, status)).inc()
        return True

    async def _send(self, due: Due) -> Outcome:
        """One POST, bounded as a whole by ``webhooks.timeout``; never raises but cancellation."""
        try:
            return await asyncio.wait_for(self._post(due), self.config.timeout)
        except asyncio.TimeoutError:
            return Outcome(error=f"no answer within {self.config.timeout:g} s (webhooks.timeout)")
        except Refused as exc:
            return Outcome(error=str(exc), final=True)
        except (httpx.HTTPError, OSError) as exc:
            text = str(exc).strip() or "(no detail)"
            return Outcome(error=redact(f"{type(exc).__name__}: {text}", [self._secret])[:500])

    async def _post(self, due: Due) -> Outcome:
        host, address = await resolve(due.url, self._policy, self.config.timeout)
        url = httpx.URL(due.url)
        body = payload_of(due)
        timestamp = int(time.time())
        headers = {
            "Host": url.netloc.decode("ascii").rsplit("@", 1)[-1],
            "Content-Type": "application/json",
            "User-Agent": "qasdk-webhooks",
            "X-Qasdk-Delivery": delivery_id(due.task_id),
            "X-Qasdk-Attempt": str(due.attempts + 1),
            "X-Qasdk-Timestamp": str(timestamp),
            "X-Qasdk-Signature": sign(self._secret, timestamp, body),
        }
        request = self._client.build_request(
            "POST",
            url.copy_with(host=str(address)),
            content=body,
            headers=headers,
            # Certificates are checked against the name, on the address that was checked.
            extensions={"sni_hostname": host},
        )
        response = await self._client.send(request, stream=True)
        try:
            code = response.status_code
            if 200 <= code < 300:
                return Outcome(status_code=code)
            if 300 <= code < 400:
                where = masked_url(response.headers.get("location", ""))
                error = f"HTTP {code}: redirect to {where} not followed"
                return Outcome(status_code=code, error=error)
            return Outcome(status_code=code, error=f"HTTP {code}{await _excerpt(response)}")
        finally:
            await response.aclose()


async def _excerpt(response: httpx.Response) -> str:
    """``: <the start of the answer>``, read no further than :data:`READ_LIMIT` bytes."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= READ_LIMIT:
            break
    text = data[:READ_LIMIT].decode("utf-8", "replace").strip()
    text = "".join(c if c.isprintable() else " " for c in text)[:_EXCERPT]
    return f": {text}" if text else ""
