// The console's frame: key, theme, navigation; each page is a module under pages/.

import { api, ApiError, getKey, setKey } from "./api.js";
import { failure, h, show, zone } from "./ui.js";
import * as overview from "./pages/overview.js";
import * as tasks from "./pages/tasks.js";
import * as task from "./pages/task.js";
import * as submit from "./pages/submit.js";
import * as tools from "./pages/tools.js";
import * as workers from "./pages/workers.js";
import * as audit from "./pages/audit.js";
import * as config from "./pages/config.js";
import * as approvals from "./pages/approvals.js";

// A new page adds a line here and a link in index.html.
const PAGES = { overview, tasks, task, submit, tools, workers, approvals, audit, config };

const main = document.getElementById("main");
const context = { me: null, can: () => true };
let leave = null;

/** ``#/tasks/ID?status=x`` -> {page: "task", id, params}. */
function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "overview", id] = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query));
  if (name === "tasks" && id) return { page: "task", nav: "tasks", id, params };
  return { page: PAGES[name] ? name : "overview", nav: name, id, params };
}

let current = 0;

async function render() {
  if (leave) leave();
  leave = null;
  const { page, nav, id, params } = route();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const module = PAGES[page];
  document.title = `${module.title} · qasdk console`;
  // Each visit draws into a view of its own: a slow page left behind draws into nothing.
  const visit = ++current;
  const view = h("div", {}, h("p", { class: "loading", "aria-busy": "true" }, "Loading…"));
  show(main, view);
  try {
    const cleanup = (await module.render(view, { id, params }, context)) ?? null;
    if (visit === current) leave = cleanup;
    else if (cleanup) cleanup();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // the key dialog is open
    if (!(error instanceof ApiError)) console.error(error); // a fault of the console itself
    show(view, h("h1", {}, module.title), failure(error));
  }
}

// -- the key ---------------------------------------------------------------------------

const dialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key-input");
const keyError = document.getElementById("key-error");

function askForKey(reason) {
  document.getElementById("key-reason").textContent = reason;
  if (!dialog.open) dialog.showModal();
  keyInput.focus();
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setKey(keyInput.value.trim());
  keyError.textContent = "";
  try {
    await identify();
    keyInput.value = "";
    dialog.close();
    render();
  } catch (error) {
    setKey(null);
    keyError.textContent = error.message;
  }
});

dialog.addEventListener("cancel", (event) => event.preventDefault()); // a key is needed

window.addEventListener("qasdk:unauthorized", (event) => {
  setKey(null);
  askForKey(event.detail.message);
});

document.getElementById("forget").addEventListener("click", () => {
  setKey(null);
  start();
});

/** Who we are: the key's scopes decide which pages and buttons show. */
async function identify() {
  const me = await api("/api/me");
  context.me = me;
  context.can = (scope) => me.scopes.includes(scope);
  for (const link of document.querySelectorAll("#nav a[data-scope]")) {
    link.parentElement.hidden = !context.can(link.dataset.scope);
  }
  const who = document.getElementById("who");
  who.textContent = me.key ? `key ${me.key.name} (${me.key.scopes.join(", ")})` : me.keys_required ? "" : "open server";
  document.getElementById("forget").hidden = !getKey();
  return me;
}

// -- the theme -------------------------------------------------------------------------

const THEMES = ["auto", "light", "dark"];
const themeButton = document.getElementById("theme");

function applyTheme(theme) {
  if (theme === "auto") document.documentElement.removeAttribute("data-theme");
  else document.documentElement.dataset.theme = theme;
  themeButton.textContent = `Theme: ${theme}`;
  themeButton.setAttribute(
    "aria-label",
    theme === "auto" ? "Theme: follows the system; switch to light" : `Theme: ${theme}; switch`,
  );
}

themeButton.addEventListener("click", () => {
  const current = localStorage.getItem("qasdk.theme") ?? "auto";
  const next = THEMES[(THEMES.indexOf(current) + 1) % THEMES.length];
  localStorage.setItem("qasdk.theme", next);
  applyTheme(next);
});

// -- start -----------------------------------------------------------------------------

async function start() {
  try {
    await identify();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      show(main, h("h1", {}, "qasdk console"), h("p", { class: "loading" }, "Waiting for an API key…"));
      askForKey(error.message); // its form renders the page once a key works
    } else {
      show(main, h("h1", {}, "qasdk console"), failure(error, "The server did not answer"));
    }
    return;
  }
  render();
}

// The skip link moves focus; as a plain "#main" link it would be taken for a page's address.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

applyTheme(localStorage.getItem("qasdk.theme") ?? "auto");
document.getElementById("zone").textContent = `Times in ${zone()}`;
window.addEventListener("hashchange", render);
start();
