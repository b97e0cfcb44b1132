// /metrics (Prometheus text) read into figures: gauges, per-tool calls, failures, p50/p95.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** [{name, labels, value}] of every sample. */
export function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] ?? "").matchAll(LABEL)) {
      labels[name] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

export function gauge(samples, name, labels = {}) {
  const found = samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found ? found.value : null;
}

/** The q-quantile of a cumulative histogram's buckets [[le, count]], interpolated. */
export function quantile(buckets, q) {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return lower; // beyond the last finite bucket: its bound
      const inside = count - below;
      return inside ? lower + ((le - lower) * (rank - below)) / inside : le;
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** Per tool: {calls, failures, p50, p95} in seconds, from this server's process. */
export function toolFigures(samples) {
  const tools = new Map();
  const entry = (tool) => {
    if (!tools.has(tool)) tools.set(tool, { calls: 0, failures: 0, buckets: [], p50: null, p95: null });
    return tools.get(tool);
  };
  for (const s of samples) {
    if (s.name === "qasdk_tool_calls_total") {
      const figures = entry(s.labels.tool);
      figures.calls += s.value;
      if (s.labels.outcome !== "success") figures.failures += s.value;
    } else if (s.name === "qasdk_tool_call_duration_seconds_bucket") {
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
      entry(s.labels.tool).buckets.push([le, s.value]);
    }
  }
  for (const figures of tools.values()) {
    figures.p50 = quantile(figures.buckets, 0.5);
    figures.p95 = quantile(figures.buckets, 0.95);
    delete figures.buckets;
  }
  return tools;
}
