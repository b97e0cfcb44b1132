// Tools: the registry (descriptions, parameters, tags, timeouts, permissions) and its figures.

import { api } from "../api.js";
import { parse, toolFigures } from "../metrics.js";
import { duration, empty, failure, h, show } from "../ui.js";

export const title = "Tools";

function parameters(method) {
  if (!(method.parameters ?? []).length) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "small" }, (method.parameters ?? []).map((p) => h("li", {},
    h("code", {}, p.name), `: ${p.type}`, p.required !== false ? h("span", { class: "required", "aria-label": "required" }) : ` = ${JSON.stringify(p.default)}`,
    p.description ? h("span", { class: "muted" }, ` — ${p.description}`) : null)));
}

export async function render(main, { params }, context) {
  const [list, metrics] = await Promise.all([api("/api/methods"), api("/metrics").catch((e) => e)]);
  const figures = typeof metrics === "string" ? toolFigures(parse(metrics)) : new Map();
  const refused = list.refused ?? [];
  const cards = list.methods.map((method) => {
    const f = figures.get(method.name) ?? { calls: 0, failures: 0, p50: null, p95: null };
    const ms = (s) => (s === null ? "—" : duration(s * 1000));
    return h("section", { class: "panel", id: `tool-${method.name}`, "aria-labelledby": `tool-title-${method.name}` },
      h("div", { class: "spread" },
        h("h2", { id: `tool-title-${method.name}` }, h("code", {}, method.name)),
        context.can("submit") ? h("a", { class: "button small", href: `#/submit?tool=${encodeURIComponent(method.name)}`, "aria-label": `Run ${method.name}` }, "Run") : null),
      h("p", {}, method.description || h("span", { class: "muted" }, "no description")),
      h("div", { class: "grid" },
        h("div", {}, h("h3", {}, "Parameters"), parameters(method), h("p", { class: "small muted" }, `returns ${method.return_type}`)),
        h("div", {}, h("h3", {}, "Settings"), h("dl", { class: "facts small" },
          h("dt", {}, "Timeout"), h("dd", {}, method.timeout ? `${method.timeout} s` : "server default"),
          h("dt", {}, "Tags"), h("dd", {}, method.tags?.length ? method.tags.join(", ") : "—"),
          h("dt", {}, "Permissions"), h("dd", {}, method.permissions?.length ? method.permissions.join(", ") : "none declared"),
          h("dt", {}, "Code"), h("dd", {}, h("code", {}, `${method.module_path}.${method.function_name}`)))),
        h("div", {}, h("h3", {}, "Calls (this server)"), h("dl", { class: "facts small" },
          h("dt", {}, "Calls"), h("dd", {}, String(f.calls)),
          h("dt", {}, "Failures"), h("dd", {}, String(f.failures)),
          h("dt", {}, "p50"), h("dd", {}, ms(f.p50)),
          h("dt", {}, "p95"), h("dd", {}, ms(f.p95))))));
  });
  show(main,
    h("h1", {}, title, " ", h("span", { class: "muted small" }, `${list.count} registered`)),
    typeof metrics === "string" ? null : failure(metrics, "Figures could not be read from /metrics"),
    cards.length ? cards : empty("no tools registered yet: qasdk sync PATH registers them"),
    refused.length ? h("section", { class: "panel failure", "aria-label": "Refused tools" }, h("h2", {}, "Not loaded"),
      h("ul", {}, refused.map((r) => h("li", {}, h("code", {}, r.name), `: ${r.reason}`)))) : null);
  if (params.name) document.getElementById(`tool-${params.name}`)?.scrollIntoView();
  return null;
}
