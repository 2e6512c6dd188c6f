// Small SVG charts of our own: a line chart of one or more series over equal steps.

const NS = "http://www.w3.org/2000/svg";

/**
 * @typedef {{name: string, values: (number | null)[], color?: string, dashed?: boolean}} Series
 * @param {string} tag @param {Record<string, string | number>} attrs
 */
function svg(tag, attrs = {}) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/** @param {number} value */
export function short(value) {
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (Math.abs(value) >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(Number(value.toFixed(Math.abs(value) < 1 ? 3 : 1)));
}

/** The least of 1, 2, 5 × 10ⁿ at or above the value: round numbers on the axis. @param {number} value */
function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= value) || value;
}

const PALETTE = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c"];

/**
 * A line chart with a legend; described for screen readers by its title and latest values.
 * @param {{title: string, series: Series[], labels: string[], unit?: string}} spec
 * @returns {HTMLElement}
 */
export function lineChart({ title, series, labels, unit = "" }) {
  const width = 480;
  const height = 180;
  const pad = { left: 44, right: 10, top: 10, bottom: 24 };
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && Number.isFinite(v)));
  const top = niceCeiling(Math.max(1, ...all.map(Number)));
  const steps = Math.max(1, labels.length - 1);
  const x = (/** @type {number} */ i) => pad.left + (i / steps) * (width - pad.left - pad.right);
  const y = (/** @type {number} */ v) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const latest = series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => v !== null);
      return `${s.name} ${last === undefined || last === null ? "none" : short(last)}${unit}`;
    })
    .join(", ");
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  root.setAttribute("aria-label", `${title}: latest ${latest}`);
  const titleEl = svg("title");
  titleEl.textContent = title;
  root.appendChild(titleEl);
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    root.appendChild(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" });
    label.textContent = short(value);
    root.appendChild(label);
  }
  for (const index of [0, labels.length - 1]) {
    if (index < 0) continue;
    const label = svg("text", {
      x: x(index),
      y: height - 6,
      "text-anchor": index === 0 ? "start" : "end",
      class: "axis",
    });
    label.textContent = labels[index] || "";
    root.appendChild(label);
  }
  series.forEach((s, n) => {
    const color = s.color || PALETTE[n % PALETTE.length];
    let path = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const line = svg("path", { d: path || "M0,0", fill: "none", stroke: color, "stroke-width": 2 });
    if (s.dashed) line.setAttribute("stroke-dasharray", "5 4");
    root.appendChild(line);
    if (labels.length === 1 && s.values[0] !== null) {
      root.appendChild(svg("circle", { cx: x(0), cy: y(Number(s.values[0])), r: 3, fill: color }));
    }
  });
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, n) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = s.dashed ? "swatch dashed" : "swatch";
    swatch.style.borderColor = s.color || PALETTE[n % PALETTE.length];
    item.append(swatch, s.name);
    legend.appendChild(item);
  });
  const figure = document.createElement("figure");
  figure.className = "chart-box";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, root, legend);
  return figure;
}
