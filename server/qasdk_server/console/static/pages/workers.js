// Workers: every worker process on the database: its pools, heartbeat, what it runs and has run.

import { api } from "../api.js";
import { badge, empty, facts, h, show, time } from "../ui.js";

export const title = "Workers";
const REFRESH = 5000;
const COLUMNS = [["Worker"], ["Host"], ["PID", true], ["Pools"], ["Started"], ["Last heartbeat"], ["State"], ["Running", true], ["Done", true], ["Version"]];

function state(w) {
  if (w.alive) return "alive";
  return w.stopped_at ? "stopped" : "dead";
}

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
            h("thead", {}, h("tr", {}, COLUMNS.map(([t, num]) => h("th", { class: num ? "num" : null }, t)))),
            h("tbody", {}, list.workers.map((w) => h("tr", { "data-state": state(w) },
              h("td", {}, h("code", { title: `id ${w.id}` }, w.name)),
              h("td", {}, w.host),
              h("td", { class: "num" }, String(w.pid)),
              h("td", {}, w.pools.join(", ")),
              h("td", {}, time(w.started_at)),
              h("td", {}, time(w.last_heartbeat)),
              h("td", {}, w.alive ? badge("alive") : badge("dead", w.stopped_at ? "stopped" : "silent")),
              h("td", { class: "num" }, `${w.running}/${w.concurrency}`),
              h("td", { class: "num" }, String(w.done)),
              h("td", {}, w.version))))))
          : empty("no workers: start one with qasdk worker (qasdk serve runs one unless --no-worker)"),
        h("p", { class: "hint" }, "Each worker registers at start and beats every worker.heartbeat_interval; one silent for worker.stalled_after is presumed dead (its tasks run elsewhere). A worker takes only the tasks of its pools (qasdk worker --pool NAME).")));
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
