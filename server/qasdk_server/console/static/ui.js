// Small DOM helpers: elements are built, never parsed from strings (no injection, CSP-clean).

/** ``h("a", {href: "#/x", class: "c", on: {click}}, "text", child)`` */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "rect", "line", "text", "polyline", "g", "title", "path"].includes(tag);
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === "text") {
      node.textContent = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (!svg && name in node && typeof value !== "string") {
      node[name] = value; // properties such as checked, disabled, value
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace what ``node`` shows. */
export function show(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

/** A moment in the user's own time zone. */
export function when(iso) {
  if (!iso) return "—";
  return dateTime.format(new Date(iso));
}

export function clock(date) {
  return timeOnly.format(date);
}

export function zone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** ``<time>`` with the full moment on hover. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: iso }, when(iso));
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function between(start, end) {
  if (!start) return null;
  return (end ? new Date(end) : new Date()) - new Date(start);
}

export function badge(status, label = status) {
  return h("span", { class: `badge ${status}` }, label);
}

export function json(value) {
  return h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

/** An empty state: what is missing and what to do about it. */
export function empty(message, link) {
  return h("div", { class: "empty", role: "status" }, message, link ? [" — ", link] : null);
}

/** An error state that says what failed and why, in the server's words. */
export function failure(error, what = "This page could not be loaded") {
  const message = error?.message ?? String(error);
  let advice = null;
  if (error?.status === 403) advice = "Your API key does not have the scope this needs.";
  if (error?.status === 401) advice = "An API key is needed.";
  if (error?.name === "TypeError" && /fetch|network/i.test(message)) advice = "Is the server running?";
  return h("div", { class: "failure", role: "alert" }, h("strong", {}, what), message, advice ? h("p", {}, advice) : null);
}

export function loading(rows = 5, columns = 5) {
  return h(
    "div",
    { class: "table-wrap", "aria-busy": "true" },
    h("table", { "aria-label": "Loading" },
      h("tbody", {}, Array.from({ length: rows }, () =>
        h("tr", { class: "skeleton" }, Array.from({ length: columns }, () => h("td", {}, "…")))))),
  );
}

export function field(label, control, { hint, required = false, id } = {}) {
  const name = id ?? control.id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: name, class: required ? "required" : null }, label),
    control,
    hint ? h("p", { class: "hint", id: `${name}-hint` }, hint) : null,
    h("p", { class: "error-text", id: `${name}-error`, role: "alert" }),
  );
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}
