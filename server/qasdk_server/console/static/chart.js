// A small hand-drawn SVG chart: finished tasks per interval (bars) and the failure rate (line).

import { clock, h } from "./ui.js";

const WIDTH = 600;
const HEIGHT = 180;
const PAD = { left: 30, right: 34, top: 10, bottom: 22 };

/** Tasks finished in the last ``minutes``, in ``buckets`` intervals: {start, ok, bad}. */
export function bucketed(tasks, { minutes = 60, buckets = 12, now = Date.now() } = {}) {
  const span = (minutes * 60_000) / buckets;
  const first = now - minutes * 60_000;
  const out = Array.from({ length: buckets }, (_, i) => ({ start: new Date(first + i * span), ok: 0, bad: 0 }));
  for (const task of tasks) {
    if (!task.completed_at) continue;
    const at = new Date(task.completed_at).getTime();
    const index = Math.floor((at - first) / span);
    if (index < 0 || index >= buckets) continue;
    if (task.status === "completed") out[index].ok += 1;
    else out[index].bad += 1; // failed or cancelled
  }
  return out;
}

export function chart(series, label) {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const peak = Math.max(1, ...series.map((b) => b.ok + b.bad));
  const step = plotW / series.length;
  const y = (n) => PAD.top + plotH - (n / peak) * plotH;
  const bars = [];
  const rate = [];
  series.forEach((bucket, i) => {
    const x = PAD.left + i * step + step * 0.15;
    const w = step * 0.7;
    const total = bucket.ok + bucket.bad;
    const tip = `${clock(bucket.start)}: ${bucket.ok} completed, ${bucket.bad} failed or cancelled`;
    bars.push(
      h("g", {}, h("title", {}, tip),
        h("rect", { class: "bar-ok", x, width: w, y: y(bucket.ok), height: plotH + PAD.top - y(bucket.ok) }),
        h("rect", { class: "bar-bad", x, width: w, y: y(total), height: y(bucket.ok) - y(total) })),
    );
    const failure = total ? bucket.bad / total : 0;
    rate.push(`${PAD.left + i * step + step / 2},${PAD.top + plotH - failure * plotH}`);
  });
  const ticks = [0, Math.round(peak / 2), peak].filter((v, i, all) => all.indexOf(v) === i);
  const times = [0, Math.floor(series.length / 2), series.length - 1];
  return h(
    "svg",
    { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": label, },
    h("title", {}, label),
    ticks.map((v) => [
      h("line", { class: "grid-line", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }),
      h("text", { class: "tick", x: PAD.left - 6, y: y(v) + 3, "text-anchor": "end" }, String(v)),
    ]),
    h("text", { class: "tick", x: WIDTH - PAD.right + 4, y: PAD.top + 6 }, "100%"),
    h("text", { class: "tick", x: WIDTH - PAD.right + 4, y: PAD.top + plotH }, "0%"),
    h("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }),
    bars,
    h("polyline", { class: "rate", points: rate.join(" ") }),
    times.map((i) =>
      h("text", { class: "tick", x: PAD.left + i * step + step / 2, y: HEIGHT - 6, "text-anchor": "middle" }, clock(series[i].start)),
    ),
  );
}
