// Submit: a task in words, or a direct tool call through a form made from the tool's JSON Schema.

import { api } from "../api.js";
import { empty, field, h, show } from "../ui.js";

export const title = "Submit";

/** The schema a value must meet, with ``Optional[...]`` (anyOf with null) unwrapped. */
function core(schema) {
  const options = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(options)) {
    const real = options.filter((s) => s.type !== "null");
    if (real.length === 1) return { ...schema, ...real[0], nullable: true, anyOf: undefined, oneOf: undefined };
  }
  if (Array.isArray(schema.type)) {
    const real = schema.type.filter((t) => t !== "null");
    if (real.length === 1) return { ...schema, type: real[0], nullable: schema.type.includes("null") };
  }
  return schema;
}

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.const !== undefined) return "enum";
  return ["string", "integer", "number", "boolean"].includes(schema.type) ? schema.type : "json";
}

/** One parameter's control, and how to read (and check) its value: [ok, value] or [false, why]. */
function control(parameter, id) {
  const schema = core(parameter.schema ?? {});
  const kind = kindOf(schema);
  const hasDefault = "default" in parameter;
  const describedBy = `${id}-hint`;
  const common = { id, name: parameter.name, "aria-describedby": describedBy, required: parameter.required || null };
  let node;
  if (kind === "enum") {
    const values = schema.enum ?? [schema.const];
    node = h("select", common,
      parameter.required ? h("option", { value: "" }, "choose…") : h("option", { value: "" }, hasDefault ? `default (${JSON.stringify(parameter.default)})` : "not given"),
      values.map((v, i) => h("option", { value: String(i) }, typeof v === "string" ? v : JSON.stringify(v))));
    return { node, kind, read: () => (node.value === "" ? [true, undefined] : [true, values[Number(node.value)]]) };
  }
  if (kind === "boolean") {
    node = h("select", common,
      h("option", { value: "" }, parameter.required ? "choose…" : hasDefault ? `default (${parameter.default})` : "not given"),
      h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
    return { node, kind, read: () => (node.value === "" ? [true, undefined] : [true, node.value === "true"]) };
  }
  if (kind === "integer" || kind === "number") {
    node = h("input", {
      ...common, type: "number", inputmode: kind === "integer" ? "numeric" : "decimal",
      step: kind === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
      placeholder: hasDefault ? `default ${parameter.default}` : null,
    });
    return {
      node, kind,
      read: () => {
        const text = node.value.trim();
        if (text === "") return [true, undefined];
        const value = Number(text);
        if (!Number.isFinite(value)) return [false, "must be a number"];
        if (kind === "integer" && !Number.isInteger(value)) return [false, "must be a whole number"];
        if (schema.minimum !== undefined && value < schema.minimum) return [false, `must be at least ${schema.minimum}`];
        if (schema.maximum !== undefined && value > schema.maximum) return [false, `must be at most ${schema.maximum}`];
        if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return [false, `must be more than ${schema.exclusiveMinimum}`];
        if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return [false, `must be less than ${schema.exclusiveMaximum}`];
        return [true, value];
      },
    };
  }
  if (kind === "string") {
    node = h("input", {
      ...common, type: "text", maxlength: schema.maxLength, minlength: schema.minLength,
      placeholder: hasDefault ? `default ${JSON.stringify(parameter.default)}` : null,
    });
    return {
      node, kind,
      read: () => {
        if (node.value === "") return [true, undefined];
        if (schema.minLength !== undefined && node.value.length < schema.minLength) return [false, `must be at least ${schema.minLength} characters`];
        if (schema.pattern && !new RegExp(schema.pattern, "u").test(node.value)) return [false, `must match ${schema.pattern}`];
        return [true, node.value];
      },
    };
  }
  node = h("textarea", { ...common, rows: 3, spellcheck: "false", placeholder: hasDefault ? `default ${JSON.stringify(parameter.default)}` : "JSON" });
  return {
    node, kind,
    read: () => {
      if (node.value.trim() === "") return [true, undefined];
      let value;
      try {
        value = JSON.parse(node.value);
      } catch (error) {
        return [false, `is not valid JSON: ${error.message}`];
      }
      const want = schema.type;
      const got = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
      if ((want === "array" || want === "object") && got !== want && !(got === "null" && schema.nullable)) return [false, `must be a JSON ${want}`];
      return [true, value];
    },
  };
}

function typeHint(parameter) {
  const bits = [parameter.type];
  if (!parameter.required && "default" in parameter) bits.push(`default ${JSON.stringify(parameter.default)}`);
  return [parameter.description, `(${bits.join(", ")})`].filter(Boolean).join(" ");
}

export async function render(main, { params }, context) {
  if (!context.can("submit")) {
    show(main, h("h1", {}, title), empty("your API key does not have the submit scope"));
    return null;
  }
  const { methods } = await api("/api/methods");
  const mode = { value: params.tool ? "direct" : "words" };
  const tabWords = h("button", { type: "button", role: "tab", id: "tab-words", "aria-controls": "panel-words" }, "In words");
  const tabDirect = h("button", { type: "button", role: "tab", id: "tab-direct", "aria-controls": "panel-direct" }, "Call a tool");
  const description = h("textarea", { id: "task-description", name: "task_description", rows: 4, placeholder: "What is the weather in Paris?" });
  const tool = h("select", { id: "tool", name: "method", required: true },
    h("option", { value: "" }, methods.length ? "choose a tool…" : "no tools registered"),
    methods.map((m) => h("option", { value: m.name, selected: m.name === params.tool }, m.name)));
  const toolFields = h("div", { id: "tool-fields" });
  const priority = h("input", { id: "priority", type: "number", min: 1, max: 10, step: 1, value: "5", inputmode: "numeric" });
  const timeout = h("input", { id: "timeout", type: "number", min: 0, step: "any", placeholder: "server default", inputmode: "decimal" });
  const status = h("p", { class: "error-text", role: "alert", id: "submit-status" });
  const send = h("button", { type: "submit", class: "primary", id: "send" }, "Submit");
  let controls = [];

  const wordsPanel = h("div", { id: "panel-words", role: "tabpanel", "aria-labelledby": "tab-words" },
    field("Task", description, { required: true, hint: "The model reads it and picks the tools." }));
  const directPanel = h("div", { id: "panel-direct", role: "tabpanel", "aria-labelledby": "tab-direct" },
    field("Tool", tool, { required: true }), toolFields);

  function select(next) {
    mode.value = next;
    tabWords.setAttribute("aria-selected", String(next === "words"));
    tabDirect.setAttribute("aria-selected", String(next === "direct"));
    wordsPanel.hidden = next !== "words";
    directPanel.hidden = next !== "direct";
    status.textContent = "";
  }
  tabWords.addEventListener("click", () => select("words"));
  tabDirect.addEventListener("click", () => select("direct"));

  function drawTool() {
    const method = methods.find((m) => m.name === tool.value);
    controls = [];
    if (!method) {
      show(toolFields);
      return;
    }
    // ``required`` is left out when true (the registry's encoding omits defaults).
    const rows = (method.parameters ?? []).map((raw) => {
      const parameter = { ...raw, required: raw.required !== false };
      const made = control(parameter, `param-${parameter.name}`);
      controls.push({ parameter, ...made });
      return field(parameter.name, made.node, { required: parameter.required, hint: typeHint(parameter) });
    });
    show(toolFields, h("p", { class: "hint" }, method.description),
      rows.length ? rows : h("p", { class: "muted" }, "This tool takes no parameters."));
  }
  tool.addEventListener("change", drawTool);

  function mark(node, message) {
    const error = document.getElementById(`${node.id}-error`);
    if (error) error.textContent = message ?? "";
    if (message) node.setAttribute("aria-invalid", "true");
    else node.removeAttribute("aria-invalid");
  }

  /** The request body, or null after marking what is wrong. */
  function body() {
    const common = {};
    let ok = true;
    const p = Number(priority.value);
    if (!Number.isInteger(p) || p < 1 || p > 10) { mark(priority, "must be a whole number from 1 to 10"); ok = false; } else { mark(priority); common.priority = p; }
    if (timeout.value.trim() !== "") {
      const t = Number(timeout.value);
      if (!(t > 0) || t > 86400) { mark(timeout, "must be more than 0 and at most 86400 seconds"); ok = false; } else { mark(timeout); common.timeout = t; }
    } else mark(timeout);
    if (mode.value === "words") {
      if (!description.value.trim()) { mark(description, "say what to do"); return null; }
      mark(description);
      return ok ? { task_description: description.value, ...common } : null;
    }
    if (!tool.value) { mark(tool, "choose a tool"); return null; }
    mark(tool);
    const values = {};
    for (const { parameter, node, read } of controls) {
      const [valid, value] = read();
      if (!valid) { mark(node, `${parameter.name} ${value}`); ok = false; continue; }
      if (value === undefined && parameter.required) { mark(node, `${parameter.name} is required`); ok = false; continue; }
      mark(node);
      if (value !== undefined) values[parameter.name] = value;
    }
    return ok ? { method: tool.value, params: values, ...common } : null;
  }

  // A field's complaint goes once it is edited.
  const clear = (event) => {
    if (!event.target.getAttribute?.("aria-invalid")) return;
    mark(event.target);
    if (!form.querySelector("[aria-invalid=true]")) status.textContent = "";
  };

  const form = h("form", {
    class: "panel", "aria-label": "Submit a task", novalidate: true,
    on: {
      input: clear,
      change: clear,
      submit: async (event) => {
        event.preventDefault();
        status.textContent = "";
        const request = body();
        if (!request) {
          status.textContent = "Fix the fields marked above.";
          form.querySelector("[aria-invalid=true]")?.focus();
          return;
        }
        send.disabled = true;
        try {
          const answer = await api("/api/tasks", { method: "POST", body: request });
          location.hash = `#/tasks?new=${answer.task_id}`;
        } catch (error) {
          const problems = error.problems ?? [];
          for (const problem of problems) {
            const name = (problem.field ?? "").replace(/^params\./, "");
            const node = document.getElementById(`param-${name}`) ?? document.getElementById(name === "task_description" ? "task-description" : name);
            if (node) mark(node, problem.reason);
          }
          status.textContent = `Not submitted: ${error.message}`;
        } finally {
          send.disabled = false;
        }
      },
    },
  },
  h("div", { class: "tabs", role: "tablist", "aria-label": "How to run it" }, tabWords, tabDirect),
  wordsPanel, directPanel,
  h("div", { class: "grid" }, field("Priority", priority, { hint: "1–10, higher runs first" }), field("Timeout (seconds)", timeout, { hint: "for the whole task" })),
  status,
  h("div", { class: "row" }, send));

  show(main, h("h1", {}, title), form);
  select(mode.value);
  drawTool();
  return null;
}
