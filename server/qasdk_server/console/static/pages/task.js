// Task detail: status, timings, result or error, and the trace as a timeline that grows live.

import { api, follow } from "../api.js";
import { badge, between, duration, facts, failure, h, json, show, time } from "../ui.js";
import { cancelButton, describe } from "./tasks.js";

export const title = "Task";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

// A blocked task (its retries used up) waits for an operator: run it again, or give up on it.
function deadLetterButtons(task, done, context) {
  if (task.status !== "blocked" || !context.can("cancel")) return null;
  const act = (action, label, busy, style) => {
    const button = h("button", {
      type: "button",
      class: `${style} small`,
      "aria-label": `${label} task ${task.task_id}`,
      on: {
        click: async () => {
          button.disabled = true;
          button.textContent = busy;
          try {
            done(await api(`/api/tasks/${task.task_id}/${action}`, { method: "POST" }));
          } catch (error) {
            button.disabled = false;
            button.textContent = label;
            window.alert(`The task could not be ${action === "retry" ? "retried" : "discarded"}: ${error.message}`);
          }
        },
      },
    }, label);
    return button;
  };
  return h("div", { class: "decide" }, act("retry", "Retry", "Retrying…", "primary"), act("discard", "Discard", "Discarding…", "danger"));
}

function history(task) {
  if (!task.attempt_history || !task.attempt_history.length) return null;
  return ["Failed attempts", h("ul", { class: "plain" }, task.attempt_history.map((entry) =>
    h("li", {}, `#${entry.attempt} `, time(entry.at), ` ${entry.error.type}: ${entry.error.message}`,
      entry.retry_at ? h("span", { class: "muted" }, " — retried at ", time(entry.retry_at)) : null)))];
}

function usage(step) {
  if (!step.usage) return null;
  const parts = Object.entries(step.usage).map(([name, n]) => `${n} ${name.replace(/_tokens$/, "").replaceAll("_", " ")}`);
  return h("span", { class: "muted small" }, `tokens: ${parts.join(", ")}`);
}

function modelStep(step, turn) {
  return h("li", { class: "model", dataset: { seq: step.seq, kind: "model" } },
    h("div", { class: "step-head" },
      h("span", { class: "kind" }, `Model turn ${turn}`),
      h("span", { class: "muted small" }, duration(step.duration_ms)),
      usage(step),
      h("span", { class: "muted small" }, time(step.started_at))),
    step.thinking ? h("details", {}, h("summary", {}, "Thinking"), h("pre", {}, step.thinking)) : null,
    step.content ? h("pre", {}, step.content) : h("p", { class: "muted small" }, "(no text: it called tools)"),
    step.error ? h("p", { class: "error-text" }, `${step.error.type}: ${step.error.message}`) : null);
}

function toolStep(step) {
  return h("li", { class: `tool${step.error ? " error" : ""}`, dataset: { seq: step.seq, kind: "tool" } },
    h("div", { class: "step-head" },
      h("span", { class: "kind" }, "Tool call ", h("code", {}, step.name ?? "?")),
      step.error ? badge("failed", "error") : badge("completed", "ok"),
      h("span", { class: "muted small" }, duration(step.duration_ms)),
      step.attempt > 1 ? h("span", { class: "badge pending" }, `attempt ${step.attempt}`) : null,
      step.cached ? h("span", { class: "badge ok", title: "answered from the result cache: the tool did not run" }, "cache hit") : null,
      step.retries ? h("span", { class: "badge pending", title: "attempts after the first (the tool's retries)" }, `${step.retries} ${step.retries === 1 ? "retry" : "retries"}`) : null,
      step.code_version ? h("span", { class: "muted small", title: "version of the tool code" }, `code ${step.code_version.slice(0, 12)}`) : null,
      h("span", { class: "muted small" }, time(step.started_at))),
    h("details", { open: true }, h("summary", {}, "Arguments"), json(step.arguments ?? {})),
    step.error
      ? h("p", { class: "error-text" }, `${step.error.type}: ${step.error.message}`)
      : h("details", { open: true }, h("summary", {}, "Result"), json(step.result ?? null)));
}

export async function render(main, { id }, context) {
  const head = h("div", {});
  const summary = h("section", { class: "panel", "aria-label": "Task" });
  const outcome = h("section", { class: "panel", "aria-label": "Outcome" });
  const timeline = h("ol", { class: "timeline", "aria-label": "Trace", id: "timeline" });
  const traceState = h("p", { class: "muted small", "aria-live": "polite" }, "Following the task…");
  const steps = new Map();
  let task = await api(`/api/tasks/${encodeURIComponent(id)}`);
  const control = new AbortController();

  show(main,
    h("p", {}, h("a", { href: "#/tasks" }, "← Tasks")),
    head, summary, outcome,
    h("section", { class: "panel", "aria-labelledby": "trace-title" }, h("h2", { id: "trace-title" }, "Trace"), traceState, timeline));

  function drawTask() {
    show(head, h("div", { class: "spread" },
      h("h1", {}, "Task ", h("code", {}, task.task_id.slice(0, 8)), " ", h("span", { id: "task-status" }, badge(task.status))),
      h("div", { class: "decide" },
        deadLetterButtons(task, (t) => { task = t; drawTask(); }, context),
        cancelButton(task, (t) => { task = t; drawTask(); }, context))));
    show(summary, facts([
      ["Id", h("code", {}, task.task_id)],
      ["What", describe(task)],
      task.kind === "direct" && task.params ? ["Params", json(task.params)] : null,
      ["Priority", String(task.priority)],
      ["Attempts", String(task.attempts)],
      task.next_attempt_at ? ["Next attempt", time(task.next_attempt_at)] : null,
      history(task),
      ["Created", time(task.created_at)],
      ["Started", time(task.started_at)],
      ["Finished", time(task.completed_at)],
      ["Waited", duration(between(task.created_at, task.started_at ?? task.completed_at))],
      ["Ran", duration(between(task.started_at, task.completed_at))],
      task.usage ? ["Tokens", `${task.usage.total_tokens} (${task.usage.prompt_tokens} prompt, ${task.usage.completion_tokens} completion, ${task.usage.turns} turns)`] : null,
    ]));
    if (task.error) show(outcome, h("h2", {}, "Error"), h("p", { class: "error-text", role: "alert" }, `${task.error.type}: ${task.error.message}`));
    else if (task.status === "completed") show(outcome, h("h2", {}, "Result"), json(task.result));
    else show(outcome, h("h2", {}, "Result"), h("p", { class: "muted" }, task.status === "cancelled" ? "cancelled before it finished" : "not finished yet"));
  }

  function drawSteps() {
    let turn = 0;
    const ordered = [...steps.values()].sort((a, b) => a.seq - b.seq);
    show(timeline, ordered.map((step) => (step.kind === "model" ? modelStep(step, ++turn) : toolStep(step))));
    if (!ordered.length) {
      show(timeline, h("li", { class: "muted" }, TERMINAL.has(task.status) ? "no steps were recorded" : "no steps yet"));
    }
  }

  drawTask();
  drawSteps();
  if (task.kind === "direct" && !TERMINAL.has(task.status)) traceState.textContent = "A direct call: its trace is the one tool call.";

  follow(`/api/tasks/${task.task_id}/events`, (event, data) => {
    if (event === "status") {
      // The stream's task leaves out the big fields: read them once it is done.
      task = { ...task, ...data };
      drawTask();
      if (TERMINAL.has(data.status)) api(`/api/tasks/${task.task_id}`).then((full) => { task = full; drawTask(); }).catch(() => {});
    } else if (event === "step") {
      steps.set(data.seq, data);
      drawSteps();
    } else if (event === "progress") {
      const share = typeof data.fraction === "number" ? `${Math.round(data.fraction * 100)} %` : "";
      traceState.textContent = `${data.tool}: ${[share, data.message].filter(Boolean).join(" — ")}`;
    } else if (event === "breaker") {
      traceState.textContent = `Circuit breaker of ${data.tool} is now ${data.state.replace("_", "-")} (${data.failures} of the last ${data.calls} calls failed).`;
    }
  }, control.signal)
    .then(() => {
      traceState.textContent = TERMINAL.has(task.status) ? "The task has finished." : "The stream ended.";
      drawSteps();
    })
    .catch((error) => {
      if (control.signal.aborted) return;
      show(traceState, failure(error, "The live trace stopped"));
    });

  return () => control.abort();
}

