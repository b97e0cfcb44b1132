// The public REST API and its Server-Sent Events: the only thing the console talks to.

const KEY = "qasdk.key";

/** An answer that is not 2xx, with the server's own error type and message. */
export class ApiError extends Error {
  constructor(status, type, message, problems = []) {
    super(message);
    this.status = status;
    this.type = type;
    this.problems = problems;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const key = getKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function failure(response) {
  let detail = null;
  try {
    detail = (await response.json()).error ?? null;
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = new ApiError(
    response.status,
    detail?.type ?? "http",
    detail?.message ?? `HTTP ${response.status} ${response.statusText}`,
    detail?.problems ?? [],
  );
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent("qasdk:unauthorized", { detail: error }));
  }
  return error;
}

/** ``path`` with ``params`` as its query string (empty values left out). */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** JSON (or text, for /metrics) from the API; throws ApiError on any non-2xx answer. */
export async function api(path, { method = "GET", body, signal, ok = [] } = {}) {
  const init = { method, signal, headers: headers(), credentials: "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok && !ok.includes(response.status)) throw await failure(response);
  const type = response.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await response.json() : await response.text();
  return ok.length ? { status: response.status, data } : data;
}

/**
 * A task's events (``status``, ``step``) as they come: ``onEvent(name, data)`` for each.
 * EventSource cannot send an Authorization header, so the stream is read with fetch.
 * Resolves when the stream ends (after the terminal status) or ``signal`` aborts.
 */
export async function follow(path, onEvent, signal) {
  const response = await fetch(path, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  } finally {
    reader.releaseLock();
  }
}
