// Approvals: tool calls waiting for a person, approved or rejected from here.

import { api, url } from "../api.js";
import { badge, empty, failure, h, json, show, time } from "../ui.js";

export const title = "Approvals";

const REFRESH = 5000;

function decision(approval, draw, context) {
  if (approval.status !== "pending" || !context.can("submit")) return badge(approval.status);
  const reason = h("input", { type: "text", placeholder: "reason (optional)", "aria-label": `Reason for ${approval.tool}` });
  const said = h("span", { class: "muted small", role: "status" });
  async function decide(choice) {
    said.textContent = "…";
    try {
      const body = { decision: choice };
      if (reason.value.trim()) body.reason = reason.value.trim();
      await api(`/api/tasks/${approval.task_id}/approvals/${approval.approval_id}`, { method: "POST", body });
      await draw();
    } catch (error) {
      show(said, failure(error, "The decision was not taken"));
    }
  }
  return h("div", { class: "decide" },
    reason,
    h("button", { type: "button", on: { click: () => decide("approve") } }, "Approve"),
    h("button", { type: "button", class: "danger", on: { click: () => decide("reject") } }, "Reject"),
    said);
}

export async function render(main, { params }, context) {
  const status = params.status ?? "pending";
  const body = h("div", {});
  const choose = h("select", { id: "approvals-status", on: { change: () => { location.hash = `#/approvals?status=${choose.value}`; } } },
    ["pending", "approved", "rejected", "expired", "all"].map((s) => h("option", { value: s, selected: s === status }, s)));
  show(main, h("h1", {}, title),
    h("div", { class: "filters" }, h("div", {}, h("label", { for: "approvals-status" }, "Status"), choose)),
    h("section", { class: "panel", "aria-label": "Approvals" }, body));
  let stopped = false;
  let timer = null;
  async function draw() {
    const page = await api(url("/api/approvals", { status }));
    if (stopped) return;
    if (!page.approvals.length) {
      show(body, empty(status === "pending" ? "no tool call waits for a person" : "no approvals match"));
      return;
    }
    show(body, h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Asked", "Task", "Tool", "Arguments", "Expires", "Decision"].map((t) => h("th", {}, t)))),
      h("tbody", {}, page.approvals.map((a) => h("tr", {},
        h("td", {}, time(a.created_at)),
        h("td", {}, h("a", { href: `#/tasks/${a.task_id}` }, h("code", {}, a.task_id.slice(0, 8)))),
        h("td", {}, h("code", {}, a.tool)),
        h("td", {}, h("details", {}, h("summary", {}, "arguments"), json(a.arguments))),
        h("td", {}, time(a.expires_at)),
        h("td", {}, decision(a, draw, context), a.reason ? h("div", { class: "muted small" }, a.reason) : null)))))));
  }
  async function refresh() {
    try {
      await draw();
    } catch (error) {
      show(body, failure(error));
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH);
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
