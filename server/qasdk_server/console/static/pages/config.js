// Configuration: what the server runs with (secrets masked), and reloading it.

import { api } from "../api.js";
import { badge, facts, h, json, show, time } from "../ui.js";

export const title = "Configuration";

function outcome(last) {
  if (!last) return h("span", { class: "muted" }, "none since the server started");
  return h("div", {},
    badge(last.outcome), " ", time(last.at), h("span", { class: "muted" }, ` (${last.trigger})`),
    last.problems?.length ? h("ul", { class: "error-text" }, last.problems.map((p) => h("li", {}, [p.source?.path, p.field, p.reason].filter(Boolean).join(": ")))) : null,
    last.settings?.length ? h("p", { class: "small" }, `changed: ${last.settings.join(", ")}`) : null,
    last.needs_restart?.length ? h("p", { class: "small" }, `needs a restart: ${last.needs_restart.join(", ")}`) : null);
}

export async function render(main) {
  const body = h("div", {});
  const status = h("p", { "aria-live": "polite", id: "reload-status", class: "small" });
  const reload = h("button", {
    type: "button", class: "primary", id: "reload",
    on: { click: async () => {
      reload.disabled = true;
      status.textContent = "Reloading…";
      try {
        const answer = await api("/api/config/reload", { method: "POST", ok: [422] });
        status.textContent = answer.data.outcome === "rejected" ? "Rejected: nothing changed (see below)." : `Reload ${answer.data.outcome}.`;
        await draw();
      } catch (error) {
        status.textContent = `The reload failed: ${error.message}`;
      } finally {
        reload.disabled = false;
      }
    } },
  }, "Reload configuration and tools");
  async function draw() {
    const active = await api("/api/config");
    show(body,
      h("section", { class: "panel", "aria-label": "Source" }, facts([
        ["File", active.source ? h("code", {}, active.source) : "defaults and environment"],
        ["Loaded", time(active.loaded_at)],
        ["Watching", active.watching.length ? active.watching.join(", ") : "nothing (qasdk serve --watch PATH)"],
        ["Last reload", outcome(active.last_reload)],
      ])),
      Object.entries(active.config).map(([section, value]) => h("details", { class: "panel", open: section === "server" || section === "model" },
        h("summary", {}, h("strong", {}, section)), json(value))));
  }
  show(main, h("div", { class: "spread" }, h("h1", {}, title), h("div", { class: "row" }, status, reload)),
    h("p", { class: "hint" }, "Passwords, keys and credentials in URLs are shown as ****."), body);
  await draw();
  return null;
}
