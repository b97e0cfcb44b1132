// Overview: tasks by status, queue depth, workers, throughput and failures, slowest tools.

import { api, url } from "../api.js";
import { bucketed, chart } from "../chart.js";
import { gauge, parse, toolFigures } from "../metrics.js";
import { badge, duration, empty, failure, h, show } from "../ui.js";

export const title = "Overview";

const STATUSES = ["pending", "running", "awaiting_approval", "blocked", "completed", "failed", "cancelled"];
const REFRESH = 5000;

function card(label, figure, extra = null, name = label) {
  return h("section", { class: "panel card", "aria-label": name },
    h("div", { class: "label" }, label), h("div", { class: "figure" }, figure), extra);
}

function breakerCard(breakers) {
  if (!breakers) return card("Circuit breakers", "—");
  const open = breakers.breakers.filter((b) => b.state !== "closed");
  const detail = open.length
    ? h("ul", { class: "plain" }, open.map((b) => h("li", {},
        h("a", { href: `#/tools?name=${encodeURIComponent(b.tool)}` }, b.tool), " ",
        badge(b.state === "open" ? "bad" : "pending", b.state.replace("_", "-")),
        h("span", { class: "muted small" }, ` ${b.failures} of ${b.calls} failed`))))
    : h("div", { class: "label" }, "none open");
  return card("Circuit breakers", String(open.length), detail);
}

function cards(samples, health, breakers = null) {
  const byStatus = h("div", { class: "statuses" },
    STATUSES.map((status) => h("a", { href: `#/tasks?status=${status}` },
      badge(status), " ", String(gauge(samples, "qasdk_tasks", { status }) ?? 0))));
  const total = STATUSES.reduce((n, status) => n + (gauge(samples, "qasdk_tasks", { status }) ?? 0), 0);
  return h("div", { class: "grid" },
    card("Tasks", String(total), byStatus),
    card("Queue depth", String(gauge(samples, "qasdk_queue_depth") ?? "—"), h("div", { class: "label" }, "waiting for a worker")),
    card("Workers online", String(gauge(samples, "qasdk_workers") ?? "—"), h("div", { class: "label" }, h("a", { href: "#/workers" }, "see workers"))),
    card("Server", health ? badge(health.status === "ok" ? "ok" : "bad", health.status) : "—",
      health ? h("div", { class: "label" }, `database ${health.database.ok ? "up" : "down"} · model ${health.model.ok ? "up" : "down"} · ${health.registry.tools} tools`) : null),
    breakerCard(breakers),
  );
}

function slowest(samples) {
  const figures = [...toolFigures(samples)].filter(([, f]) => f.calls > 0 && f.p95 !== null);
  figures.sort((a, b) => b[1].p95 - a[1].p95);
  if (!figures.length) return empty("no tool calls measured by this server yet");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Tool"), h("th", { class: "num" }, "Calls"), h("th", { class: "num" }, "p50"), h("th", { class: "num" }, "p95"))),
    h("tbody", {}, figures.slice(0, 5).map(([tool, f]) => h("tr", {},
      h("td", {}, h("a", { href: `#/tools?name=${encodeURIComponent(tool)}` }, tool)),
      h("td", { class: "num" }, String(f.calls)),
      h("td", { class: "num" }, duration(f.p50 * 1000)),
      h("td", { class: "num" }, duration(f.p95 * 1000)))))));
}

async function recent() {
  const since = new Date(Date.now() - 60 * 60_000).toISOString();
  const page = await api(url("/api/tasks", { created_after: since, limit: 500 }));
  return page.tasks;
}

export async function render(main) {
  const figures = h("div", { class: "figures" });
  const activity = h("div", {}, h("div", { class: "chart" }));
  const tools = h("div", { class: "table-wrap" });
  show(main,
    h("h1", {}, title),
    figures,
    h("div", { class: "grid two" },
      h("section", { class: "panel", "aria-labelledby": "activity-title" },
        h("div", { class: "spread" }, h("h2", { id: "activity-title" }, "Last hour"),
          h("div", { class: "legend" },
            h("span", {}, h("span", { class: "swatch ok" }), "completed"),
            h("span", {}, h("span", { class: "swatch bad" }), "failed or cancelled"),
            h("span", {}, h("span", { class: "swatch rate" }), "failure rate"))),
        activity),
      h("section", { class: "panel", "aria-labelledby": "slow-title" },
        h("h2", { id: "slow-title" }, "Slowest tools (p95)"), tools)));
  show(figures, cards([], null));

  let stopped = false;
  let timer = null;
  async function refresh() {
    const [metrics, health, tasks, breakers] = await Promise.allSettled([api("/metrics"), api("/health", { ok: [503] }), recent(), api("/api/breakers")]);
    if (stopped) return;
    const samples = metrics.status === "fulfilled" ? parse(metrics.value) : [];
    const status = health.status === "fulfilled" ? health.value.data : null;
    const open = breakers.status === "fulfilled" ? breakers.value : null;
    show(figures, cards(samples, status, open), metrics.status === "rejected" ? failure(metrics.reason, "Metrics could not be read") : null);
    if (tasks.status === "fulfilled") {
      const series = bucketed(tasks.value);
      const finished = series.reduce((n, b) => n + b.ok + b.bad, 0);
      show(activity, chart(series, `Tasks finished per 5 minutes in the last hour: ${finished}`),
        finished ? null : h("p", { class: "muted small" }, "no task finished in the last hour — ", h("a", { href: "#/submit" }, "submit one")));
    } else {
      show(activity, failure(tasks.reason, "Tasks could not be read"));
    }
    show(tools, metrics.status === "fulfilled" ? slowest(samples) : failure(metrics.reason));
    timer = setTimeout(refresh, REFRESH);
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
