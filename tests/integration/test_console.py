"""The web console in a real browser: headless Chromium driven by Playwright, a real server.

Each test opens the console of a `qasdk serve` of its own database (so "no tasks yet"
is true at first), with the scripted model; every request the page makes is checked to
stay on 127.0.0.1 and the page must log no error. Screenshots land in ``docs/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until
from tests.integration.test_docs import CHROMIUM_FLAGS, chromium

pytestmark = [pytest.mark.integration]

SHOTS = Path(__file__).parents[2] / "docs" / "console"
LOOPBACK = ("http://127.0.0.1:", "http://127.0.0.1/")
WAIT = 30_000  # ms: generous, the machine may be busy
ZONE = "Asia/Tokyo"  # the browser's zone: not the server's (UTC), so a test can tell them apart

#: A tool with an enum and a Literal, so the generated form has selects.
EXTRA_TOOLS = '''
from enum import Enum
from typing import Literal

from qasdk import tool


class Unit(str, Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@tool(tags=["demo"])
def convert(value: float, unit: Unit, digits: int = 1, style: Literal["short", "long"] = "short") -> str:
    """Convert a temperature from Celsius.

    Args:
        value: Degrees Celsius.
        unit: The unit to convert to.
        digits: Digits after the point.
        style: How to write it.
    """
    result = value if unit is Unit.CELSIUS else value * 9 / 5 + 32
    text = f"{result:.{digits}f}"
    return text if style == "short" else f"{text} degrees {unit.value}"


@tool(timeout=120)
def gate(path: str) -> str:
    """Wait until a file exists: the test decides when this call ends.

    Args:
        path: The file to wait for.
    """
    import os
    import time

    deadline = time.monotonic() + 110
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)
    return "open"


@tool
def guarded_note(text: str) -> str:
    """Write a note, once a person agrees.

    Args:
        text: The note.
    """
    return f"noted: {text}"
'''


@pytest.fixture(scope="module")
def console_url(pg_data: Path, pg_url: str) -> Iterator[str]:
    """A database of the console's own: its first page has no tasks."""
    chromium()  # skip (or fail, under QASDK_REQUIRE_BROWSER) before starting anything
    with scratch_database(pg_data, pg_url, "console") as url:
        yield url


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, session_model: ScriptedModel, console_url: str
) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("console"), session_model.url)
    (project / "tools" / "convert.py").write_text(EXTRA_TOOLS)
    config_file = project / "model_config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["middleware"] = [
        {"name": "metrics"},
        {"name": "approval", "tools": ["guarded_note"]},
        {"name": "cache"},
        {"name": "limits"},
    ]
    config_file.write_text(yaml.safe_dump(config))
    synced = qasdk(project, console_url, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    server = Server(project, console_url)
    try:
        yield server
    finally:
        assert server.stop() == 0, server.output


UNNAMED = """() => [...document.querySelectorAll(
    "a, button, input, select, textarea, [role=tab], summary")]
  .filter((n) => n.offsetParent !== null || n.tagName === "SUMMARY")
  .filter((n) => {
    const by = n.getAttribute("aria-labelledby");
    const name = n.getAttribute("aria-label")
      || (by && by.split(" ").map((id) => document.getElementById(id)?.textContent).join(""))
      || (n.labels && n.labels.length && n.labels[0].textContent)
      || (n.tagName !== "INPUT" && n.textContent) || n.title || "";
    return !name.trim();
  })
  .map((n) => n.outerHTML.slice(0, 120))"""

#: Adds up the page's unexpected layout shifts (not those right after a click or a key).
COUNT_SHIFTS = """
window.shift = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.shift += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""


class Browser:
    """One page, with what it requested and what it logged."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.base}/console/{route}")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def unnamed(self) -> list[str]:
        """Visible controls without an accessible name (label, aria-label or text)."""
        found: list[str] = self.page.evaluate(UNNAMED)
        return found

    def shifted(self) -> float:
        """Layout shift since the last call (Chromium's layout-shift entries, summed)."""
        value: float = self.page.evaluate(
            "() => { const v = window.shift; window.shift = 0; return v; }"
        )
        return value

    def clean(self) -> None:
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert not self.errors, f"the page logged errors: {self.errors}"


@pytest.fixture
def browser(console: Server) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        context = launched.new_context(
            viewport={"width": 1280, "height": 860}, locale="en-US", timezone_id=ZONE
        )
        context.set_default_timeout(WAIT)
        outside: list[str] = []

        def only_loopback(route: Any) -> None:
            if route.request.url.startswith(LOOPBACK):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        context.add_init_script(COUNT_SHIFTS)
        page = context.new_page()
        opened = Browser(page, console.base)
        opened.outside = outside
        try:
            yield opened
        finally:
            context.close()
            launched.close()


def test_the_console_is_served_with_a_strict_policy(console: Server) -> None:
    root = console.http.get("/", follow_redirects=False)
    assert root.status_code in (301, 302, 307, 308)
    assert root.headers["location"] == "/console"
    page = console.http.get("/console")  # the address the README gives
    assert page.status_code == 200, page.text
    assert page.text == console.http.get("/console/").text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy
    assert "<script" in page.text and 'src="/console/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    script = console.http.get("/console/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == policy
    assert script.headers["cache-control"] == "no-cache"
    assert "etag" in script.headers or "last-modified" in script.headers


def test_the_workers_api_names_this_servers_process(console: Server) -> None:
    until(lambda: console.http.get("/api/workers").json()["alive"] >= 1, "no worker came alive")
    body = console.http.get("/api/workers").json()
    assert body["server"]["embedded_worker"] is True
    assert body["server"]["pid"] > 0 and body["server"]["name"].endswith(
        f":{body['server']['pid']}"
    )
    fields = {"id", "name", "host", "pid", "pools", "started_at", "last_heartbeat", "alive"}
    assert all(fields | {"running", "done", "version"} <= set(w) for w in body["workers"])
    # The embedded worker registered itself: this server's own process, serving the default pool.
    (mine,) = [w for w in body["workers"] if w["name"] == body["server"]["name"] and w["alive"]]
    assert mine["pools"] == ["default"] and mine["started_at"] is not None
    me = console.http.get("/api/me").json()
    assert me == {
        "keys_required": False,
        "key": None,
        "scopes": ["read", "submit", "cancel", "admin"],
    }


def test_the_overview_loads_and_says_there_are_no_tasks_yet(
    console: Server, browser: Browser
) -> None:
    page = browser.page
    page.goto(f"{console.base}/")  # the server's address leads to the console
    page.wait_for_url("**/console")
    page.get_by_role("heading", name="Overview").wait_for()
    assert page.get_by_text(f"Times in {ZONE}").is_visible()
    # From the keyboard: the skip link first, then the pages.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.get_by_role("heading", name="Overview").is_visible()  # still the same page
    page.get_by_label("Workers online").get_by_text("1", exact=True).wait_for()
    page.get_by_role("img", name="Tasks finished per 5 minutes in the last hour: 0").wait_for()
    assert page.get_by_text("no task finished in the last hour").is_visible()
    page.get_by_role("link", name="Tasks", exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_text("no tasks yet").wait_for()
    assert page.get_by_role("link", name="submit one").is_visible()
    browser.shot("tasks-empty")
    browser.clean()


def test_a_direct_task_from_the_generated_form_turns_completed_live(
    console: Server, browser: Browser
) -> None:
    browser.open("#/submit")
    page = browser.page
    page.get_by_role("tab", name="Call a tool").click()
    page.get_by_label("Tool", exact=True).select_option("convert")
    unit = page.get_by_label("unit", exact=True)
    assert unit.evaluate("n => n.tagName") == "SELECT"  # an enum is a select
    assert unit.evaluate("n => n.required") is True
    options = unit.locator("option").all_inner_texts()
    assert options == ["choose…", "celsius", "fahrenheit"]
    assert (
        page.get_by_label("style", exact=True).evaluate("n => n.tagName") == "SELECT"
    )  # a Literal too
    # Types are checked before anything is sent.
    page.get_by_label("value", exact=True).fill("")
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("value is required").wait_for()
    page.get_by_label("digits", exact=True).fill("1.5")
    page.get_by_label("value", exact=True).fill("21.5")
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("digits must be a whole number").wait_for()
    page.get_by_text("unit is required").wait_for()
    assert console.http.get("/api/tasks").json()["tasks"] == []  # nothing was sent
    page.get_by_label("digits", exact=True).fill("2")
    unit.select_option(label="fahrenheit")
    browser.shot("submit")
    page.evaluate("window.stayed = true")  # gone if the page reloads
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/console/#/tasks?new=*")
    task_id = page.url.rsplit("new=", 1)[1]
    row = page.locator(f"tr[data-task-id='{task_id}']")
    row.wait_for()
    page.wait_for_selector(f"tr[data-task-id='{task_id}'][data-status='completed']")
    assert row.get_by_text("completed").is_visible()
    assert page.evaluate("window.stayed") is True
    task = console.get(task_id)
    assert task["status"] == "completed" and task["result"] == "70.70"
    assert task["params"] == {"value": 21.5, "unit": "fahrenheit", "digits": 2}
    browser.shot("tasks")
    browser.clean()


def test_a_task_in_words_shows_its_trace_with_the_tool_call(
    console: Server, browser: Browser, model: ScriptedModel
) -> None:
    model.push(
        reply.tool_call("add", {"a": 2, "b": 3}, thinking="I should add them."),
        reply.text("2 + 3 = 5."),
    )
    browser.open("#/submit")
    page = browser.page
    page.get_by_label("Task", exact=True).fill("What is 2 + 3?")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/console/#/tasks?new=*")
    task_id = page.url.rsplit("new=", 1)[1]
    page.get_by_role("link", name=f"Task {task_id}").click()
    page.locator("#task-status .badge.completed").wait_for()
    timeline = page.get_by_role("list", name="Trace")
    tool = timeline.locator("li[data-kind='tool']")
    tool.wait_for()
    assert "add" in tool.inner_text() and '"a": 2' in tool.inner_text()
    assert "5" in tool.get_by_role("group").last.inner_text()  # the result
    turns = timeline.locator("li[data-kind='model']")
    assert turns.count() == 2
    assert "2 + 3 = 5." in turns.nth(1).inner_text()
    thinking = turns.first.locator("details")
    assert not thinking.evaluate("n => n.open")  # folded away
    page.get_by_text("2 + 3 = 5.").first.wait_for()
    created = datetime.fromisoformat(console.get(task_id)["created_at"].replace("Z", "+00:00"))
    local = created.astimezone(ZoneInfo(ZONE))
    shown = page.locator("dl.facts dt:text-is('Created') + dd").inner_text()
    assert local.strftime("%b %-d, %Y, %-I:%M:%S %p") == shown.replace("\u202f", " ")
    browser.shot("task")
    browser.clean()


def test_the_trace_grows_live_while_the_task_runs(
    console: Server, browser: Browser, model: ScriptedModel, tmp_path: Path
) -> None:
    opened = tmp_path / "open"
    model.push(reply.tool_call("gate", {"path": str(opened)}), reply.text("The gate opened."))
    task_id = console.submit(task_description="Wait for the gate.")["task_id"]
    browser.open(f"#/tasks/{task_id}")
    page = browser.page
    timeline = page.get_by_role("list", name="Trace")
    timeline.locator("li[data-kind='model']").first.wait_for()  # the first turn, done
    page.locator("#task-status .badge.running").wait_for()
    assert timeline.locator("li[data-kind='tool']").count() == 0  # the call is still running
    page.evaluate("window.stayed = true")
    opened.write_text("")
    timeline.locator("li[data-kind='tool']").wait_for()
    page.locator("#task-status .badge.completed").wait_for()
    page.get_by_role("region", name="Outcome").get_by_text("The gate opened.").wait_for()
    assert timeline.locator("li[data-kind='model']").count() == 2
    assert page.evaluate("window.stayed") is True  # it grew without a reload
    browser.clean()


def test_a_running_task_is_cancelled_from_the_list(console: Server, browser: Browser) -> None:
    task_id = console.submit(method="slow_add", params={"a": 1, "b": 2, "delay": 120})["task_id"]
    until(lambda: console.get(task_id)["status"] == "running", "the task never started")
    browser.open("#/tasks?status=running")
    page = browser.page
    row = page.locator(f"tr[data-task-id='{task_id}']")
    row.get_by_role("button", name=f"Cancel task {task_id}").click()
    page.wait_for_selector(f"tr[data-task-id='{task_id}'][data-status='cancelled']")
    assert console.get(task_id)["status"] == "cancelled"
    browser.clean()


def test_a_call_waiting_for_approval_is_approved_from_the_console(
    console: Server, browser: Browser
) -> None:
    task_id = console.submit(method="guarded_note", params={"text": "hello"})["task_id"]
    until(
        lambda: console.get(task_id)["status"] == "awaiting_approval",
        "the task never waited for approval",
    )
    browser.open("#/approvals")
    page = browser.page
    page.get_by_role("heading", name="Approvals").wait_for()
    page.get_by_role("cell", name="guarded_note").wait_for()
    page.get_by_role("textbox", name="Reason for guarded_note").fill("looks fine")
    browser.shot("approvals-waiting")
    page.get_by_role("button", name="Approve").click()
    page.get_by_text("no tool call waits for a person").wait_for()
    task = console.finished(task_id, within=30)
    assert (task["status"], task["result"]) == ("completed", "noted: hello")
    browser.clean()


def test_every_page_renders_without_errors(console: Server, browser: Browser) -> None:
    assert console.run(method="add", params={"a": 1, "b": 1})["status"] == "completed"
    stopped = console.submit(method="slow_add", params={"a": 1, "b": 1, "delay": 120})
    cancel = console.http.post(f"/api/tasks/{stopped['task_id']}/cancel", params={"wait": 30})
    assert cancel.json()["status"] == "cancelled"
    page = browser.page
    pages = {
        "overview": ("#/overview", "Overview"),
        "tasks": ("#/tasks", "Tasks"),
        "tools": ("#/tools", re.compile(r"^Tools \d+ registered$")),
        "workers": ("#/workers", "Workers"),
        "approvals": ("#/approvals", "Approvals"),
        "audit": ("#/audit", "Audit log"),
        "config": ("#/config", "Configuration"),
    }
    assert page.evaluate("PerformanceObserver.supportedEntryTypes.includes('layout-shift')")
    for name, (route, heading) in pages.items():
        browser.open(route)
        page.get_by_role("heading", name=heading).first.wait_for()
        browser.shifted()
        if name == "overview":
            finished = sum(
                t["completed_at"] is not None
                for t in console.http.get("/api/tasks").json()["tasks"]
            )
            page.get_by_role(
                "img", name=f"Tasks finished per 5 minutes in the last hour: {finished}"
            ).wait_for()
            page.get_by_label("Slowest tools (p95)").locator("table, .empty").wait_for()
        if name == "tasks":
            page.locator("#task-rows tr").first.wait_for()
            status = page.get_by_label("Status", exact=True)
            status.focus()
            status.select_option("cancelled")
            page.wait_for_url("**/console/#/tasks?status=cancelled")
            page.locator("#task-rows tr[data-status='cancelled']").first.wait_for()
            assert page.locator("#task-rows tr:not([data-status='cancelled'])").count() == 0
            assert status.evaluate("n => n === document.activeElement")  # focus stays
            status.select_option("")
        if name == "tools":
            page.locator("#tool-convert").get_by_text("demo").wait_for()
        if name == "workers":
            page.get_by_text("alive").first.wait_for()
        if name == "audit":
            page.get_by_text("sync", exact=True).first.wait_for()  # qasdk sync made the tools
        if name == "config":
            page.get_by_role("button", name="Reload configuration and tools").click()
            page.get_by_text("Reload unchanged.").wait_for()
        assert not browser.unnamed(), f"{name}: controls without a name: {browser.unnamed()}"
        shift = browser.shifted()
        assert shift < 0.1, f"{name}: the layout shifted by {shift:.3f} while its data loaded"
        browser.shot(name)
    # Dark theme at a phone's width.
    page.set_viewport_size({"width": 390, "height": 844})
    browser.open("#/overview")
    page.get_by_role("button", name="Theme: follows the system; switch to light").click()
    page.get_by_role("button", name="Theme: light; switch").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.get_by_role("img", name=re.compile("Tasks finished per 5 minutes")).wait_for()
    browser.shot("overview-phone-dark")
    for route, heading in [*pages.values(), ("#/submit", "Submit")]:
        browser.open(route)
        page.get_by_role("heading", name=heading).first.wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{route} is {width}px wide on a 390px screen"
    page.reload()  # the choice outlives the page
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    browser.clean()


def test_with_keys_the_console_asks_for_one_and_shows_what_it_allows(
    console: Server, console_url: str, browser: Browser
) -> None:
    project, url = console.project, console_url
    made = qasdk(project, url, "keys", "create", "viewer", "--scope", "read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    try:
        until(lambda: console.http.get("/api/tasks").status_code == 401, "keys never applied")
        browser.open("#/tasks")
        page = browser.page
        dialog = page.get_by_role("dialog", name="An API key is needed")
        dialog.wait_for()
        dialog.get_by_label("API key").fill("qasdk_wrong")
        dialog.get_by_role("button", name="Use key").click()
        dialog.get_by_role("alert").get_by_text("not valid").wait_for()
        dialog.get_by_label("API key").fill(key)
        dialog.get_by_role("button", name="Use key").click()
        page.get_by_role("heading", name="Tasks").wait_for()
        page.get_by_text("key viewer (read)").wait_for()
        assert not page.get_by_role("link", name="Submit", exact=True).is_visible()
        assert not page.get_by_role("link", name="Audit").is_visible()
        assert page.get_by_role("button", name="Cancel").count() == 0
        assert page.evaluate("sessionStorage.getItem('qasdk.key')") == key
        browser.open("#/config")  # not in the menu, and refused when asked for anyway
        page.get_by_role("alert").get_by_text("lacks the 'admin' scope").wait_for()
        browser.errors.clear()  # the 401s and the 403 are logged by Chromium
        browser.open("#/overview")
        page.get_by_label("Workers online").wait_for()
        browser.clean()
    finally:
        revoked = qasdk(project, url, "keys", "revoke", "viewer")
        assert revoked.returncode == 0, revoked.stderr
        until(lambda: console.http.get("/api/tasks").status_code == 200, "the server stayed keyed")


def test_the_figures_read_from_metrics_are_right(console: Server, browser: Browser) -> None:
    browser.open()
    browser.page.get_by_role("heading", name="Overview").wait_for()
    figures = browser.page.evaluate(
        """async () => {
            const m = await import("/console/metrics.js");
            const text = [
                '# TYPE qasdk_tool_calls_total counter',
                'qasdk_tool_calls_total{tool="a\\\\"b",outcome="success"} 8.0',
                'qasdk_tool_calls_total{tool="a\\\\"b",outcome="timeout"} 2.0',
                'qasdk_tool_call_duration_seconds_bucket{le="0.1",tool="a\\\\"b"} 5.0',
                'qasdk_tool_call_duration_seconds_bucket{le="0.5",tool="a\\\\"b"} 10.0',
                'qasdk_tool_call_duration_seconds_bucket{le="+Inf",tool="a\\\\"b"} 10.0',
                'qasdk_queue_depth 3.0',
            ].join("\\n");
            const samples = m.parse(text);
            return {depth: m.gauge(samples, "qasdk_queue_depth"),
                    tool: Object.fromEntries(m.toolFigures(samples))};
        }"""
    )
    assert figures["depth"] == 3
    tool = figures["tool"]['a"b']
    assert tool["calls"] == 10 and tool["failures"] == 2
    assert tool["p50"] == pytest.approx(0.1) and tool["p95"] == pytest.approx(0.46)
    browser.clean()
