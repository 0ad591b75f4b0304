"use strict";
/* Benchmarks: stored runs (/admin/bench/runs) and, for the chosen one, throughput against load, latency
   percentiles per level and errors by code, on the vendored uPlot. The two chart helpers (numeric x, bars) are
   shared with the Tuning page as window.XYCharts. */
const XYCharts = (() => {
  const { h, fmt, known } = LLM;
  const COLORS = ["#58a6ff", "#f0883e", "#3fb950", "#db61a2", "#a371f7", "#39c5cf", "#d29922", "#f85149"];
  const AXIS = { stroke: "#8b949e", grid: { stroke: "#21262d", width: 1 }, ticks: { stroke: "#30363d", width: 1 } };
  const plots = new WeakMap();

  function reset(node, count) {
    if (plots.has(node)) plots.get(node).destroy();
    plots.delete(node);
    node.dataset.points = String(count);
    let empty = node.querySelector(".chart-empty");
    if (!empty) {
      empty = h("div", { class: "chart-empty", text: node.dataset.empty || "no data" });
      node.append(empty);
    }
    empty.hidden = count > 0;
  }

  /* Lines over a numeric x: lines = [{label, values (one per x, null when unmeasured), points, step, color}]. */
  function lines(node, xs, series, { unit = "", format = (v) => fmt.num(v, 1), xFormat = (v) => fmt.num(v, 2), xLabel = "" } = {}) {
    const count = series.reduce((n, s) => n + s.values.filter(known).length, 0);
    reset(node, count);
    if (!count) return;
    const value = (u, v) => (known(v) ? `${format(v)} ${unit}`.trim() : LLM.DASH);
    const options = {
      width: Math.max(node.clientWidth, 240),
      height: 200,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: (u, min, max) => (min === max ? [min - 1, max + 1] : [min, max]) },
        y: { range: (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.15 : 1] },
      },
      axes: [
        { ...AXIS, label: xLabel, labelSize: 18, values: (u, ticks) => ticks.map(xFormat), ...(xs.length <= 12 ? { splits: () => xs } : {}) },
        { ...AXIS, size: 64, values: (u, ticks) => ticks.map((v) => format(v)) },
      ],
      series: [
        { label: xLabel || "x", value: (u, v) => (known(v) ? xFormat(v) : LLM.DASH) },
        ...series.map((s, i) => {
          const color = s.color || COLORS[i % COLORS.length];
          const options = { label: s.label, stroke: color, width: 1.6, spanGaps: true, value };
          options.points = { show: true, size: s.points ? 7 : 5, fill: color, stroke: color };
          if (s.points) options.paths = () => null;
          if (s.step) options.paths = uPlot.paths.stepped({ align: 1 });
          return options;
        }),
      ],
    };
    const data = [xs, ...series.map((s) => s.values.map((v) => (known(v) ? Number(v) : null)))];
    plots.set(node, new uPlot(options, data, node));
  }

  /* One bar per [label, value]. */
  function bars(node, pairs, { unit = "", format = (v) => fmt.num(v, 3) } = {}) {
    reset(node, pairs.length);
    if (!pairs.length) return;
    const xs = pairs.map((_, i) => i);
    const options = {
      width: Math.max(node.clientWidth, 240),
      height: 200,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.5, pairs.length - 0.5] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      axes: [
        { ...AXIS, splits: () => xs, values: (u, ticks) => ticks.map((t) => (pairs[t] ? pairs[t][0] : "")), size: 40 },
        { ...AXIS, size: 64, values: (u, ticks) => ticks.map((v) => `${format(v)} ${unit}`.trim()) },
      ],
      series: [
        {},
        { label: unit, stroke: "#58a6ff", fill: "#58a6ff88", width: 1, paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } },
      ],
    };
    plots.set(node, new uPlot(options, [xs, pairs.map(([, v]) => Number(v))], node));
  }

  return { lines, bars };
})();

(() => {
  if (document.body.dataset.page !== "benchmarks") return;
  const { fmt, h, $ } = LLM;
  let chosen = new URLSearchParams(window.location.search).get("run");
  let shown = false; // the first load shows a run: the one in the URL, else the newest

  const cell = (text, cls) => h("td", { class: cls || null }, text);
  const dist = (level, name, stat) => (level[name] ? level[name][stat] : null);

  function levelLabel(level) {
    const l = level.level;
    if (l.concurrency !== null && l.concurrency !== undefined) return `${l.concurrency} users`;
    return `${fmt.num(l.rate, 2)} req/s${l.max_concurrency ? ` (max ${l.max_concurrency})` : ""}`;
  }

  /* The x of each level: its concurrency, its rate, or its position when the run mixes both. */
  function levelAxis(levels) {
    if (levels.every((l) => l.level.concurrency != null)) return { xs: levels.map((l) => l.level.concurrency), label: "concurrent users" };
    if (levels.every((l) => l.level.rate != null)) return { xs: levels.map((l) => l.level.rate), label: "request rate (req/s)" };
    return { xs: levels.map((_, i) => i + 1), label: "level" };
  }

  async function loadRuns() {
    const source = $("#bench-source").value;
    const body = await LLM.get(`/admin/bench/runs${source ? `?source=${encodeURIComponent(source)}` : ""}`);
    const rows = body.runs.map((run) =>
      h(
        "tr",
        { dataset: { run: run.id }, class: run.id === chosen ? "selected" : null, onclick: () => choose(run.id) },
        cell(`${new Date(run.created_at * 1000).toLocaleString("en-GB")}`),
        cell(run.label || LLM.DASH),
        cell(run.source),
        cell(run.model),
        cell(run.api),
        cell(run.lengths, "mono"),
        cell(fmt.int(run.levels), "num"),
        cell(fmt.num(run.peak_output_throughput, 1), "num"),
      ),
    );
    LLM.fillTable($("#bench-runs"), rows, $("#bench-runs-empty"));
    if (!shown) {
      shown = true;
      const first = chosen || (body.runs[0] && body.runs[0].id);
      if (first) await choose(first);
    }
  }

  async function choose(id) {
    chosen = id;
    for (const row of LLM.$$("#bench-runs tbody tr")) row.classList.toggle("selected", row.dataset.run === id);
    const url = new URL(window.location.href);
    url.searchParams.set("run", id);
    window.history.replaceState(null, "", url);
    try {
      render(await LLM.get(`/admin/bench/runs/${encodeURIComponent(id)}`));
    } catch (error) {
      LLM.reportError(error);
    }
  }

  function render(run) {
    $("#bench-run-card").hidden = false;
    $("#bench-run-id").textContent = run.id;
    const cfg = run.config;
    $("#bench-run-facts").textContent =
      `${cfg.target.model} at ${cfg.target.base_url} (${cfg.target.api}), ${cfg.lengths}, ${cfg.requests} requests per level`;
    const flags = run.flags;
    $("#bench-run-flags").textContent =
      `Prompt lengths: ${flags.input_source}; fixed output (ignore_eos): ${flags.ignore_eos}` +
      (flags.output_estimated ? "; some output counts are estimated" : "");
    const levels = run.levels;
    const { xs, label } = levelAxis(levels);
    const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
    const sorted = order.map((i) => levels[i]);
    const x = order.map((i) => xs[i]);
    $("#bench-throughput-title").textContent = `Throughput against ${label}`;
    XYCharts.lines(
      $("#chart-bench-throughput"),
      x,
      [
        { label: "output tok/s", values: sorted.map((l) => (l.completed ? l.output_throughput : null)) },
        { label: "goodput tok/s", values: sorted.map((l) => (run.config.slo.ttft_ms || run.config.slo.tpot_ms || run.config.slo.e2e_ms ? l.goodput_tok_s : null)) },
      ],
      { unit: "tok/s", xLabel: label },
    );
    const percentiles = (name) =>
      ["p50", "p90", "p99"].map((stat) => ({ label: `${stat}`, values: sorted.map((l) => dist(l, name, stat)) }));
    XYCharts.lines($("#chart-bench-ttft"), x, percentiles("ttft_ms"), { unit: "ms", xLabel: label, format: (v) => fmt.num(v, 0) });
    XYCharts.lines($("#chart-bench-tpot"), x, percentiles("tpot_ms"), { unit: "ms", xLabel: label, format: (v) => fmt.num(v, 1) });
    const errors = {};
    for (const level of levels) for (const [code, n] of Object.entries(level.errors)) errors[code] = (errors[code] || 0) + n;
    XYCharts.bars($("#chart-bench-errors"), Object.entries(errors), { unit: "", format: (v) => fmt.int(v) });
    LLM.fillTable($("#bench-levels"), sorted.map(levelRow));
  }

  function levelRow(level) {
    const errors = Object.entries(level.errors).map(([code, n]) => `${code}: ${n}`).join(", ");
    return h(
      "tr",
      {},
      cell(levelLabel(level)),
      cell(fmt.int(level.requests), "num"),
      cell(fmt.int(level.failed), "num"),
      cell(fmt.num(level.request_throughput, 2), "num"),
      cell(fmt.num(level.output_throughput, 1), "num"),
      cell(fmt.num(level.goodput_rps, 2), "num"),
      cell(fmt.ms(dist(level, "ttft_ms", "p50")), "num"),
      cell(fmt.ms(dist(level, "ttft_ms", "p99")), "num"),
      cell(fmt.ms(dist(level, "tpot_ms", "p50")), "num"),
      cell(fmt.ms(dist(level, "tpot_ms", "p99")), "num"),
      cell(fmt.ms(dist(level, "itl_ms", "p99")), "num"),
      cell(fmt.ms(dist(level, "e2e_ms", "p99")), "num"),
      cell(errors || "none"),
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#bench-source").addEventListener("change", () => loadRuns().catch(LLM.reportError));
    loadRuns().catch(LLM.reportError);
  });
})();
