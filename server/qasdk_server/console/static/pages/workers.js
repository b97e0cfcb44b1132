// Workers: every worker process on the database, its heartbeat and what it runs now.

import { api } from "../api.js";
import { badge, empty, facts, h, show, time } from "../ui.js";

export const title = "Workers";
const REFRESH = 5000;

export async function render(main) {
  const body = h("div", {});
  const note = h("p", { class: "muted small", role: "status" });
  show(main, h("h1", {}, title), note, body);
  let timer = null;
  let stopped = false;
  async function refresh() {
    const list = await api("/api/workers");
    if (stopped) return;
    const here = list.server;
    show(body,
      h("section", { class: "panel", "aria-label": "This server" }, h("h2", {}, "This server"), facts([
        ["Process", h("code", {}, here.name)],
        ["Started", time(here.started_at)],
        ["Embedded worker", here.embedded_worker ? "yes" : "no (--no-worker)"],
        ["Tasks running here", String(here.running_tasks)],
      ])),
      h("section", { class: "panel", "aria-label": "Workers" },
        h("h2", {}, `Workers: ${list.alive} alive`),
        list.workers.length
          ? h("div", { class: "table-wrap" }, h("table", {},
            h("thead", {}, h("tr", {}, ["Worker", "Host", "PID", "Started", "Last heartbeat", "State", "Running"].map((t, i) => h("th", { class: i === 6 ? "num" : null }, t)))),
            h("tbody", {}, list.workers.map((w) => h("tr", {},
              h("td", {}, `#${w.id}`),
              h("td", {}, w.host ?? h("span", { class: "muted", title: "known while it runs a task" }, "—")),
              h("td", {}, w.pid === null ? "—" : String(w.pid)),
              h("td", {}, time(w.started_at)),
              h("td", {}, time(w.last_heartbeat)),
              h("td", {}, w.alive ? badge("alive") : badge("dead", "silent")),
              h("td", { class: "num" }, String(w.running)))))))
          : empty("no workers: start one with qasdk worker (qasdk serve runs one unless --no-worker)"),
        h("p", { class: "hint" }, "Procrastinate records a worker's id and heartbeat; its host and pid are known while it runs a task, or when it is this server's.")));
    timer = setTimeout(again, REFRESH);
  }
  // A failed refresh keeps what is shown, says why, and tries again.
  async function again() {
    try {
      await refresh();
      note.textContent = "";
    } catch (error) {
      if (stopped) return;
      note.textContent = `Not refreshed: ${error.message}; trying again`;
      timer = setTimeout(again, REFRESH);
    }
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
