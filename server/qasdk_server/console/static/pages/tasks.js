// Tasks: newest first, filtered by status, tool and text; rows follow their task live.

import { api, follow, url } from "../api.js";
import { badge, between, duration, empty, failure, h, loading, show, time } from "../ui.js";

export const title = "Tasks";

const STATUSES = ["pending", "running", "awaiting_approval", "blocked", "completed", "failed", "cancelled"];
const ACTIVE = new Set(["pending", "running"]);
const REFRESH = 3000;
// Each stream holds a connection, and a browser opens six per server: keep most for the rest.
const MAX_STREAMS = 3;

export function describe(task) {
  if (task.kind === "direct") return h("span", {}, h("code", {}, task.method), " ", h("span", { class: "muted" }, "direct call"));
  return task.task_description ?? "";
}

/** A cancel button; ``done(task)`` gets the task as the server answered. */
export function cancelButton(task, done, context) {
  if (!(ACTIVE.has(task.status) || task.status === "blocked") || !context.can("cancel")) return null;
  const button = h("button", {
    type: "button",
    class: "danger small",
    "aria-label": `Cancel task ${task.task_id}`,
    on: {
      click: async () => {
        button.disabled = true;
        button.textContent = "Cancelling…";
        try {
          const answer = await api(`/api/tasks/${task.task_id}/cancel`, { method: "POST", ok: [202] });
          done(answer.data);
        } catch (error) {
          button.disabled = false;
          button.textContent = "Cancel";
          button.title = error.message;
          window.alert(`The task could not be cancelled: ${error.message}`);
        }
      },
    },
  }, "Cancel");
  return button;
}

export async function render(main, { params }, context) {
  const filters = { status: params.status ?? "", method: params.method ?? "", text: params.text ?? "" };
  const highlight = params.new ?? null;
  const tasks = new Map(); // task_id -> task, newest first as the server sent them
  const streams = new Map(); // task_id -> AbortController
  let cursor = null;
  let stopped = false;
  let timer = null;
  let drawn = null; // what the table shows, to redraw only when it changes
  let generation = 0; // bumped by a filter change: answers to older requests are dropped

  const status = h("select", { id: "filter-status", on: { change: () => apply("status", status.value) } },
    h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)));
  const tool = h("select", { id: "filter-tool", on: { change: () => apply("method", tool.value) } }, h("option", { value: "" }, "any"));
  const text = h("input", {
    id: "filter-text", type: "search", value: filters.text, placeholder: "words, tool or id",
    on: { input: () => { filters.text = text.value; draw(); } },
    "aria-controls": "task-rows",
  });
  const body = h("div", {}, loading(8, 5));
  const more = h("button", { type: "button", hidden: true, on: { click: () => load(true) } }, "Load older tasks");
  const note = h("span", { class: "muted small", role: "status" });

  show(main,
    h("div", { class: "spread" }, h("h1", {}, title), context.can("submit") ? h("a", { class: "button primary", href: "#/submit" }, "Submit a task") : null),
    h("div", { class: "filters", role: "search" },
      h("div", {}, h("label", { for: "filter-status" }, "Status"), status),
      h("div", {}, h("label", { for: "filter-tool" }, "Tool (direct calls)"), tool),
      h("div", {}, h("label", { for: "filter-text" }, "Text (in the loaded rows)"), text)),
    h("section", { class: "panel", "aria-label": "Tasks" }, body, h("div", { class: "spread" }, more, note)));

  api("/api/methods").then((list) => {
    for (const method of list.methods) tool.append(h("option", { value: method.name, selected: method.name === filters.method }, method.name));
  }).catch(() => {});

  /** A new filter: the address follows (no navigation, so focus stays on the control). */
  function apply(name, value) {
    filters[name] = value;
    generation += 1;
    const next = new URLSearchParams({ status: filters.status, method: filters.method, text: filters.text });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    history.replaceState(null, "", `#/tasks${next.toString() ? `?${next}` : ""}`);
    for (const control of streams.values()) control.abort();
    tasks.clear();
    cursor = null;
    drawn = null;
    show(body, loading(8, 5));
    load().catch((error) => show(body, failure(error, "Tasks could not be read")));
  }

  function matches(task) {
    const words = filters.text.trim().toLowerCase();
    if (!words) return true;
    return [task.task_id, task.method, task.task_description, task.status].some((v) => v && v.toLowerCase().includes(words));
  }

  function row(task) {
    return h("tr", { dataset: { taskId: task.task_id, status: task.status }, class: task.task_id === highlight ? "highlight" : null },
      h("td", {}, h("a", { href: `#/tasks/${task.task_id}`, "aria-label": `Task ${task.task_id}` }, h("code", {}, task.task_id.slice(0, 8)))),
      h("td", { class: "what" }, describe(task)),
      h("td", {}, badge(task.status)),
      h("td", { class: "hide-narrow" }, time(task.created_at)),
      h("td", { class: "num hide-narrow" }, duration(between(task.started_at, task.completed_at))),
      h("td", {}, cancelButton(task, update, context)));
  }

  function draw() {
    const shown = [...tasks.values()].filter(matches);
    // Redraw only what changed: a poll that finds nothing new keeps focus where it is.
    const signature = JSON.stringify(shown.map((t) => [t.task_id, t.status, t.completed_at]));
    if (signature === drawn) return;
    drawn = signature;
    if (!shown.length) {
      const anyFilter = filters.status || filters.method || filters.text;
      show(body, anyFilter
        ? empty("no tasks match these filters")
        : empty("no tasks yet", context.can("submit") ? h("a", { href: "#/submit" }, "submit one") : null));
      return;
    }
    show(body, h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "What"), h("th", {}, "Status"),
        h("th", { class: "hide-narrow" }, "Created"), h("th", { class: "num hide-narrow" }, "Took"), h("th", {}, h("span", { class: "muted" }, "Actions")))),
      h("tbody", { id: "task-rows" }, shown.map(row)))));
  }

  function update(task) {
    if (!tasks.has(task.task_id)) return;
    tasks.set(task.task_id, { ...tasks.get(task.task_id), ...task });
    draw();
  }

  function stream(task) {
    if (streams.has(task.task_id) || streams.size >= MAX_STREAMS || !ACTIVE.has(task.status)) return;
    const control = new AbortController();
    streams.set(task.task_id, control);
    follow(`/api/tasks/${task.task_id}/events`, (event, data) => {
      if (event === "status") update(data);
    }, control.signal).catch(() => {}).finally(() => {
      if (streams.get(task.task_id) === control) streams.delete(task.task_id);
    });
  }

  async function load(older = false) {
    const asked = generation;
    const page = await api(url("/api/tasks", {
      status: filters.status, method: filters.method, limit: 50, cursor: older ? cursor : null,
    }));
    if (stopped || asked !== generation) return;
    if (!older) {
      // New tasks first; rows already loaded keep their place (and their live state).
      const fresh = new Map(page.tasks.map((t) => [t.task_id, t]));
      for (const [id, t] of tasks) if (!fresh.has(id)) fresh.set(id, t);
      tasks.clear();
      for (const [id, t] of fresh) tasks.set(id, t);
      cursor ??= page.next_cursor;
    } else {
      for (const t of page.tasks) tasks.set(t.task_id, t);
      cursor = page.next_cursor;
    }
    more.hidden = !cursor;
    draw();
    for (const t of tasks.values()) stream(t);
  }

  async function poll() {
    try {
      await load();
      note.textContent = "";
    } catch (error) {
      if (stopped) return;
      if (!tasks.size) show(body, failure(error, "Tasks could not be read"));
      else note.textContent = `Not refreshed: ${error.message}; trying again`;
    }
    if (!stopped) timer = setTimeout(poll, REFRESH);
  }

  await load();
  timer = setTimeout(poll, REFRESH);
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const control of streams.values()) control.abort();
  };
}
