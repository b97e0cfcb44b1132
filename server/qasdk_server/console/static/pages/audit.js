// Audit log: who did what, newest first (admin keys).

import { api, url } from "../api.js";
import { empty, h, json, show, time } from "../ui.js";

export const title = "Audit log";

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function target(entry) {
  if (!entry.target) return "—";
  if (entry.action.startsWith("task.") && TASK_ID.test(entry.target)) {
    return h("a", { href: `#/tasks/${entry.target}` }, h("code", {}, entry.target));
  }
  return entry.target;
}

export async function render(main, { params }) {
  const rows = h("tbody", {});
  const more = h("button", { type: "button", hidden: true, on: { click: () => load() } }, "Load older entries");
  const action = h("input", { id: "audit-action", type: "search", value: params.action ?? "", placeholder: "task, reload, key.create…" });
  const actor = h("input", { id: "audit-actor", type: "search", value: params.actor ?? "", placeholder: "key name, open, cli:…" });
  const filter = h("form", {
    class: "filters", role: "search",
    on: { submit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      if (action.value) next.set("action", action.value);
      if (actor.value) next.set("actor", actor.value);
      location.hash = `#/audit?${next}`;
    } },
  },
  h("div", {}, h("label", { for: "audit-action" }, "Action"), action),
  h("div", {}, h("label", { for: "audit-actor" }, "Actor"), actor),
  h("button", { type: "submit" }, "Filter"));
  const table = h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["When", "Actor", "Action", "Target", "Detail"].map((t) => h("th", {}, t)))), rows));
  const body = h("div", {}, table);
  show(main, h("h1", {}, title), filter, h("section", { class: "panel", "aria-label": "Audit entries" }, body, more));
  let cursor = null;
  let count = 0;
  async function load() {
    const page = await api(url("/api/audit", { action: params.action, actor: params.actor, cursor, limit: 50 }));
    for (const entry of page.entries) {
      count += 1;
      rows.append(h("tr", {},
        h("td", {}, time(entry.at)),
        h("td", {}, entry.actor, entry.client ? h("div", { class: "muted small" }, entry.client) : null),
        h("td", {}, h("code", {}, entry.action), entry.count > 1 ? h("span", { class: "muted small" }, ` ×${entry.count}`) : null),
        h("td", { class: "what" }, target(entry)),
        h("td", {}, Object.keys(entry.detail ?? {}).length ? h("details", {}, h("summary", {}, "detail"), json(entry.detail)) : "—")));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (!count) show(body, empty("no audit entries match"));
  }
  await load();
  return null;
}
