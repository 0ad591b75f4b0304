"use strict";
/* Shared by every page: formatting (an unmeasured figure is "—", never 0), the live feed (SSE, 1 Hz),
   API calls that carry the admin key, GPU colouring, and time-series charts on the vendored uPlot. */
const LLM = (() => {
  const DASH = "—";
  const KEY_STORAGE = "llmhost.adminKey";
  const COLORS = ["#58a6ff", "#f0883e", "#3fb950", "#db61a2", "#a371f7", "#39c5cf", "#d29922", "#f85149"];

  const known = (v) => v !== null && v !== undefined && v !== "" && Number.isFinite(Number(v));

  function number(v, digits = 1) {
    if (!known(v)) return DASH;
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  const fmt = {
    num: number,
    int: (v) => number(v, 0),
    pct: (v, digits = 0) => (known(v) ? `${number(v, digits)} %` : DASH),
    ratio: (v) => (known(v) ? `${number(v * 100, 0)} %` : DASH),
    mib(v) {
      if (!known(v)) return DASH;
      return v >= 1024 ? `${number(v / 1024, 1)} GiB` : `${number(v, v < 10 ? 1 : 0)} MiB`;
    },
    bytes: (v) => (known(v) ? fmt.mib(v / 1048576) : DASH),
    ms(v) {
      if (!known(v)) return DASH;
      return v >= 1000 ? `${number(v / 1000, 2)} s` : `${number(v, 0)} ms`;
    },
    seconds: (v) => (known(v) ? fmt.ms(v * 1000) : DASH),
    duration(s) {
      if (!known(s)) return DASH;
      s = Math.floor(s);
      if (s < 60) return `${s} s`;
      if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
      if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
      return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
    },
    count(v) {
      if (!known(v)) return DASH;
      for (const [size, unit] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]]) {
        if (v >= size) return `${number(v / size, 1)}${unit}`;
      }
      return number(v, 0);
    },
    time: (ts) => (known(ts) ? new Date(ts * 1000).toLocaleTimeString("en-GB") : DASH),
    text: (v) => (v === null || v === undefined || v === "" ? DASH : String(v)),
  };

  /* h("td", {class: "num", text: "3"}, child...) */
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const badge = (state) => h("span", { class: "state", dataset: { state: state || "" }, text: fmt.text(state) });

  function fillTable(table, rows, emptyNote) {
    table.tBodies[0].replaceChildren(...rows);
    if (emptyNote) emptyNote.hidden = rows.length > 0;
  }

  function setText(node, value) {
    if (node && node.textContent !== value) node.textContent = value;
  }

  // --- the page notice ------------------------------------------------------------------------------

  function notice(message, kind = "error") {
    const box = $("#notice");
    box.textContent = message;
    box.className = kind === "error" ? "notice" : "notice info";
    box.hidden = !message;
  }

  // --- API calls ---------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const adminKey = () => localStorage.getItem(KEY_STORAGE) || "";

  function errorMessage(status, data, text) {
    const error = data && data.error;
    let message = (error && (error.message || error)) || (data && data.detail) || text || `HTTP ${status}`;
    if (typeof message !== "string") message = JSON.stringify(message);
    if (status === 401 || status === 403) message += " (enter the admin key at the top right)";
    return message;
  }

  /* The admin key goes with every call once the user entered one: keys are checked by the server. */
  async function api(method, url, body) {
    const headers = { accept: "application/json" };
    const key = adminKey();
    if (key) headers.authorization = `Bearer ${key}`;
    const init = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, data, text));
    return data;
  }

  const get = (url) => api("GET", url);
  const post = (url, body) => api("POST", url, body === undefined ? {} : body);
  const modelPath = (model) => encodeURIComponent(model);

  /* One stored series as [{label, points: [[ts, value]]}] (labels joined by the chosen label name). */
  async function series(name, window, labels = {}, labelOf = (l) => Object.values(l).join(" ") || name) {
    const query = new URLSearchParams({ name, window: String(window), ...labels });
    const history = await get(`/api/metrics/series?${query}`);
    return ((history && history.lines) || []).map((line) => ({
      label: labelOf(line.labels),
      points: line.points.map((p) => [p.ts, p.value]),
    }));
  }

  /* A new key reloads the page: every fetch and the live feed start over with it. */
  function setupKeyField() {
    const form = $("#admin-key-form");
    const input = $("#admin-key");
    input.value = adminKey();
    form.classList.toggle("set", Boolean(input.value));
    const save = () => {
      const value = input.value.trim();
      if (value === adminKey()) return;
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
      window.location.reload();
    };
    input.addEventListener("change", save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save();
    });
  }

  // --- the live feed -------------------------------------------------------------------------------------

  const feed = { handlers: [], source: null, last: null };

  function setLive(state) {
    const node = $("#live");
    node.className = state === "live" ? "live on" : "live off";
    setText($("span", node), state);
  }

  /* EventSource cannot send headers, so the key goes in ?key= (the server accepts it there for this route). */
  function connect() {
    if (feed.source) return;
    const key = adminKey();
    const source = new EventSource(key ? `/api/events?key=${encodeURIComponent(key)}` : "/api/events");
    feed.source = source;
    source.onmessage = (event) => {
      feed.last = JSON.parse(event.data);
      setLive("live");
      for (const handler of feed.handlers) handler(feed.last);
    };
    source.onerror = () => {
      setLive("reconnecting");
      if (source.readyState === EventSource.CLOSED) refused(source);
    };
  }

  /* An HTTP error closes an EventSource for good and hides the reason: ask the JSON twin, show its message. */
  function refused(source) {
    if (feed.source === source) feed.source = null;
    get("/api/metrics/dashboard").then(
      () => setTimeout(connect, 3000),
      (error) => {
        setLive("no access");
        reportError(error);
      },
    );
  }

  /* Call handler with every dashboard snapshot (once a second). */
  function live(handler) {
    feed.handlers.push(handler);
    if (feed.last) handler(feed.last);
    connect();
  }

  window.addEventListener("pagehide", () => feed.source && feed.source.close());

  // --- GPU colouring -----------------------------------------------------------------------------------

  function gpuFigures(gpu) {
    const used = gpu.memory_used_mib;
    const total = gpu.memory_total_mib;
    return {
      utilization_percent: gpu.utilization_percent,
      memory_percent: known(used) && known(total) && total > 0 ? (100 * used) / total : null,
      temperature_c: gpu.temperature_c,
    };
  }

  /* "ok" below the first threshold, "warn" from it, "crit" from the second; "unknown" when not measured. */
  function level(value, [warn, crit]) {
    if (!known(value)) return "unknown";
    if (value >= crit) return "crit";
    return value >= warn ? "warn" : "ok";
  }

  function gpuLevel(gpu, thresholds) {
    const figures = gpuFigures(gpu);
    const levels = Object.entries(thresholds).map(([key, pair]) => level(figures[key], pair));
    for (const worst of ["crit", "warn", "ok"]) if (levels.includes(worst)) return worst;
    return "unknown";
  }

  // --- charts --------------------------------------------------------------------------------------------

  const AXIS = { stroke: "#8b949e", grid: { stroke: "#21262d", width: 1 }, ticks: { stroke: "#30363d", width: 1 } };
  const pad = (n) => String(n).padStart(2, "0");

  /* Tick labels in 24-hour time: seconds only when a tick falls between minutes, the date for long windows. */
  function timeTick(ts, window) {
    const d = new Date(ts * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (d.getSeconds()) return `${hm}:${pad(d.getSeconds())}`;
    return window > 86400 ? `${pad(d.getDate())}/${pad(d.getMonth() + 1)} ${hm}` : hm;
  }

  /* A time-series chart over the last `window` seconds: lines keyed by label, points keyed by whole seconds
     (so that lines sampled in the same second share an x). Unmeasured values are simply absent. */
  class TimeChart {
    constructor(node, { window = 300, format = (v) => number(v, 1), yMax = null, points = false, height = 170 } = {}) {
      this.node = node;
      this.window = window;
      this.unit = node.dataset.unit || "";
      this.format = format;
      this.yMax = yMax;
      this.pointsOnly = points;
      this.height = height;
      this.lines = new Map();
      this.plot = null;
      this.labels = [];
      this.now = Date.now() / 1000;
      this.empty = h("div", { class: "chart-empty", text: node.dataset.empty || "no data yet" });
      node.append(this.empty);
      node.dataset.points = "0";
      this.width = 0;
      new ResizeObserver(() => requestAnimationFrame(() => this.resize())).observe(node);
    }

    setLine(label, points) {
      const line = new Map();
      for (const [ts, value] of points) if (known(value)) line.set(Math.round(ts), Number(value));
      this.lines.set(label, line);
    }

    push(label, ts, value) {
      if (!known(value)) return;
      if (!this.lines.has(label)) this.lines.set(label, new Map());
      this.lines.get(label).set(Math.round(ts), Number(value));
    }

    clear() {
      this.lines.clear();
    }

    data() {
      const since = this.now - this.window;
      for (const line of this.lines.values()) for (const ts of line.keys()) if (ts < since) line.delete(ts);
      const labels = [...this.lines.keys()].filter((label) => this.lines.get(label).size > 0).sort();
      const xs = [...new Set(labels.flatMap((label) => [...this.lines.get(label).keys()]))].sort((a, b) => a - b);
      const ys = labels.map((label) => xs.map((x) => this.lines.get(label).get(x) ?? null));
      return { labels, table: [xs, ...ys], count: ys.reduce((n, y) => n + y.filter((v) => v !== null).length, 0) };
    }

    render(now = Date.now() / 1000) {
      this.now = now;
      const { labels, table, count } = this.data();
      this.node.dataset.points = String(count);
      this.empty.hidden = count > 0;
      if (count === 0) {
        this.destroy();
        return;
      }
      if (this.plot && labels.join("\n") === this.labels.join("\n")) this.plot.setData(table);
      else this.create(labels, table);
    }

    destroy() {
      if (this.plot) this.plot.destroy();
      this.plot = null;
      this.labels = [];
    }

    seriesOptions(label, index) {
      const color = COLORS[index % COLORS.length];
      const value = (u, v) => (v === null || v === undefined ? DASH : `${this.format(v)} ${this.unit}`.trim());
      const options = { label, stroke: color, width: 1.6, spanGaps: true, value };
      if (this.pointsOnly) {
        options.paths = () => null;
        options.points = { show: true, size: 6, fill: color, stroke: color };
      } else {
        options.fill = `${color}18`;
      }
      return options;
    }

    create(labels, table) {
      this.destroy();
      this.labels = labels;
      this.width = Math.max(this.node.clientWidth, 240);
      const yRange = (u, min, max) => {
        const top = this.yMax ?? (max > 0 ? max * 1.15 : 1);
        return [Math.min(0, min ?? 0), Math.max(top, max ?? 0)];
      };
      const options = {
        width: this.width,
        height: this.height,
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true, range: () => [this.now - this.window, this.now] }, y: { range: yRange } },
        axes: [
          { ...AXIS, space: 48, values: (u, ticks) => ticks.map((ts) => timeTick(ts, this.window)) },
          { ...AXIS, size: 64, values: (u, ticks) => ticks.map((v) => this.format(v)) },
        ],
        series: [{ value: (u, ts) => fmt.time(ts) }, ...labels.map((label, i) => this.seriesOptions(label, i))],
      };
      this.plot = new uPlot(options, table, this.node);
    }

    resize() {
      const width = Math.max(this.node.clientWidth, 240);
      if (this.plot && width !== this.width) {
        this.width = width;
        this.plot.setSize({ width, height: this.height });
      }
    }
  }

  function reportError(error) {
    notice(error instanceof ApiError ? error.message : `The page could not load its data: ${error}`);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupKeyField();
    connect(); // every page shows whether the live feed is up
  });

  return {
    DASH, known, fmt, h, $, $$, badge, fillTable, setText, notice, reportError,
    ApiError, api, get, post, modelPath, series, live, gpuFigures, gpuLevel, level, TimeChart,
  };
})();
