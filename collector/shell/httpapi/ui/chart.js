// Events over time, stacked by feed or namespace: inline SVG, one bar per time bucket.

import {h} from "./dom.js";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f"];
const STEPS = [1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400].map((s) => s * 1000);
const WIDTH = 1000;
const HEIGHT = 160;
const BOTTOM = 22;

/** The groups an event counts in: its feeds, or its namespace. */
function groupsOf(stored, by) {
  const event = stored.event;
  if (by === "namespace") return [event.source_namespace || "-"];
  const feeds = (event.record || {}).feeds || [];
  return feeds.length ? feeds : ["-"];
}

/** The chart of `rows` (stored events), grouped `by` "feed" or "namespace". */
export function eventChart(rows, by) {
  const times = rows.map((stored) => Date.parse(stored.event.time)).filter((t) => !Number.isNaN(t));
  if (!times.length) return h("p", {class: "muted"}, "No events to chart.");
  const first = Math.min(...times);
  const last = Math.max(...times);
  const step = STEPS.find((s) => (last - first) / s <= 48) || STEPS[STEPS.length - 1];
  const start = Math.floor(first / step) * step;
  const buckets = Math.floor((last - start) / step) + 1;
  const counts = Array.from({length: buckets}, () => new Map());
  const totals = new Map();
  for (const stored of rows) {
    const at = Date.parse(stored.event.time);
    if (Number.isNaN(at)) continue;
    const bucket = counts[Math.floor((at - start) / step)];
    for (const group of groupsOf(stored, by)) {
      bucket.set(group, (bucket.get(group) || 0) + 1);
      totals.set(group, (totals.get(group) || 0) + 1);
    }
  }
  const groups = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
  const colour = (group) => COLOURS[groups.indexOf(group) % COLOURS.length];
  const highest = Math.max(1, ...counts.map((bucket) => [...bucket.values()].reduce((a, b) => a + b, 0)));
  const slot = WIDTH / buckets;
  const bars = counts.map((bucket, index) => {
    let top = HEIGHT - BOTTOM;
    const x = index * slot + slot * 0.1;
    const from = new Date(start + index * step);
    return groups.filter((group) => bucket.has(group)).map((group) => {
      const height = (bucket.get(group) / highest) * (HEIGHT - BOTTOM - 8);
      top -= height;
      return h("rect", {x: x.toFixed(1), y: top.toFixed(1), width: (slot * 0.8).toFixed(1),
        height: height.toFixed(1), fill: colour(group)},
      h("title", {}, `${from.toLocaleString()}: ${bucket.get(group)} event(s) of ${group}`));
    });
  });
  const label = (index) => new Date(start + index * step).toLocaleString(undefined,
    step >= 86400000 ? {month: "short", day: "numeric"} : step < 60000
      ? {hour: "2-digit", minute: "2-digit", second: "2-digit"} : {hour: "2-digit", minute: "2-digit"});
  const ticks = [0, Math.floor(buckets / 2), buckets - 1].filter((v, i, all) => all.indexOf(v) === i).map(
    (index) => h("text", {x: (index * slot + slot / 2).toFixed(1), y: HEIGHT - 6, "text-anchor": "middle",
      class: "tick"}, label(index)));
  const summary = groups.map((group) => `${group}: ${totals.get(group)}`).join(", ");
  return h("figure", {class: "chart"},
    h("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
      "aria-label": `Events over time by ${by}: ${summary}`},
    h("line", {x1: 0, x2: WIDTH, y1: HEIGHT - BOTTOM, y2: HEIGHT - BOTTOM, class: "axis"}), bars, ticks),
    h("figcaption", {class: "legend"}, groups.map((group) => h("span", {class: "key"},
      h("svg", {viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true"},
        h("rect", {width: 10, height: 10, fill: colour(group)})), ` ${group} (${totals.get(group)})`))));
}
