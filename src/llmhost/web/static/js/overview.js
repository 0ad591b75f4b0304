"use strict";
/* Overview: headline figures, GPUs at a glance, engines, active requests and recent errors, all from the
   live feed; the three charts are backfilled from the stored series and then extended every second. */
(() => {
  const { fmt, h, $, badge, fillTable, setText, known } = LLM;
  const thresholds = JSON.parse($("#gpu-glance").dataset.thresholds);
  const STEPS = ["queued", "loading", "prefill", "decoding"];
  const charts = {
    tps: new LLM.TimeChart($("#chart-tps")),
    rps: new LLM.TimeChart($("#chart-rps"), { format: (v) => fmt.num(v, 2) }),
    cpu: new LLM.TimeChart($("#chart-cpu"), { format: (v) => fmt.num(v, 0), yMax: 100 }),
  };

  async function backfill() {
    const [throughput, cpu] = await Promise.all([
      LLM.series("engine_generation_throughput_tokens_per_second", 300, {}, (labels) => labels.model),
      LLM.series("host_cpu_utilization_ratio", 300),
    ]);
    for (const line of throughput) charts.tps.setLine(line.label, line.points);
    for (const line of cpu) charts.cpu.setLine("CPU", line.points.map(([ts, v]) => [ts, v * 100]));
    charts.tps.render();
    charts.cpu.render();
  }

  function tiles(snapshot) {
    const health = $("#health");
    setText(health, fmt.text(snapshot.health));
    health.className = `value ${snapshot.health === "ok" ? "ok" : "bad"}`;
    setText($("#rps"), fmt.num(snapshot.requests_per_second, 2));
    setText($("#tps"), fmt.num(snapshot.tokens_per_second, 1));
    setText($("#active-count"), fmt.int(snapshot.active_requests.length));
    const loaded = snapshot.engines.filter((e) => e.state !== "stopped");
    setText($("#engines-ready"), `${loaded.filter((e) => e.state === "ready").length} / ${loaded.length}`);
    const host = snapshot.host;
    setText($("#host-cpu"), fmt.pct(host && host.cpu_percent));
    setText($("#host-load"), host && host.load_average ? `load ${host.load_average.map((v) => fmt.num(v, 2)).join(" ")}` : "");
    setText($("#host-mem"), fmt.mib(host && host.memory_used_mib));
    setText($("#host-mem-hint"), host ? `of ${fmt.mib(host.memory_total_mib)}` : "");
  }

  function figure(label, text, levelName) {
    return h("span", {}, `${label} `, h("b", { class: levelName }, text));
  }

  function gpuTile(gpu) {
    const figures = LLM.gpuFigures(gpu);
    const tone = (key) => LLM.level(figures[key], thresholds[key]);
    return h(
      "a",
      { class: "gpu-tile", href: "/ui/gpus", dataset: { level: LLM.gpuLevel(gpu, thresholds), index: gpu.index } },
      h("div", { class: "name" }, `GPU ${gpu.index} · ${fmt.text(gpu.name)}`),
      h(
        "div",
        { class: "figures" },
        figure("util", fmt.pct(gpu.utilization_percent), tone("utilization_percent")),
        figure("mem", fmt.pct(figures.memory_percent), tone("memory_percent")),
        figure("temp", known(gpu.temperature_c) ? `${fmt.int(gpu.temperature_c)} °C` : LLM.DASH, tone("temperature_c")),
        figure("power", known(gpu.power_draw_w) ? `${fmt.int(gpu.power_draw_w)} W` : LLM.DASH),
      ),
    );
  }

  function gpus(snapshot) {
    const box = $("#gpu-tiles");
    box.classList.toggle("none", snapshot.gpus.length === 0);
    if (snapshot.gpus.length) {
      box.replaceChildren(...snapshot.gpus.map(gpuTile));
      return;
    }
    const reason = snapshot.no_gpu_reason || "the GPU backend gave no reason";
    box.replaceChildren(
      h("p", { class: "no-gpu-inline", id: "no-gpu" }, h("strong", {}, "No GPU detected"), ` — ${reason}. Engines run on the CPU.`),
    );
  }

  const memoryTotal = (memory) =>
    Object.values(memory || {}).reduce((sum, kinds) => sum + Object.values(kinds).reduce((a, b) => a + b, 0), 0);

  function engineRow(engine) {
    const stats = engine.stats;
    const busy = stats && stats.slots ? stats.slots.filter((s) => s.is_processing).length : engine.in_flight;
    const memory = memoryTotal(engine.memory_mib);
    return h(
      "tr",
      { dataset: { model: engine.model } },
      h("td", {}, h("a", { href: "/ui/engines" }, engine.model)),
      h("td", {}, badge(engine.state)),
      h("td", { class: "num" }, `${fmt.int(busy)} / ${fmt.int(engine.parallel)}`),
      h("td", { class: "num" }, fmt.int(engine.waiting)),
      h("td", { class: "num" }, fmt.num(engine.rates && engine.rates.generation_throughput, 1)),
      h("td", { class: "num" }, fmt.ratio(stats && stats.kv_cache_usage_ratio)),
      h("td", { class: "num" }, memory > 0 ? fmt.mib(memory) : LLM.DASH),
      h("td", { class: "num" }, fmt.duration(engine.uptime_s)),
    );
  }

  function progress(request) {
    const at = STEPS.indexOf(request.state);
    const steps = STEPS.map((step, i) => h("i", { class: i < at ? "done" : i === at ? "now" : "", title: step }));
    const detail = request.state === "decoding" ? `${fmt.int(request.chunks)} chunks` : request.state;
    return h("div", { class: "progress" }, h("span", { class: "steps" }, steps), h("span", {}, detail));
  }

  function activeRow(request) {
    return h(
      "tr",
      { dataset: { request: request.id, state: request.state } },
      h("td", { class: "mono" }, request.id),
      h("td", {}, request.dialect),
      h("td", {}, fmt.text(request.model)),
      h("td", {}, progress(request)),
      h("td", { class: "num" }, fmt.ms(request.elapsed_ms)),
      h("td", { class: "num" }, fmt.ms(request.ttft_ms)),
      h("td", { class: "num" }, fmt.int(request.chunks)),
    );
  }

  function errorRow(request) {
    return h(
      "tr",
      {},
      h("td", { class: "mono" }, request.id),
      h("td", {}, request.dialect),
      h("td", {}, fmt.text(request.model)),
      h("td", { class: "num" }, fmt.text(request.status)),
      h("td", { class: "err" }, fmt.text(request.error)),
    );
  }

  function update(snapshot) {
    tiles(snapshot);
    gpus(snapshot);
    const loaded = snapshot.engines.filter((e) => e.state !== "stopped");
    fillTable($("#engines-table"), loaded.map(engineRow), $("#engines-empty"));
    fillTable($("#active-table"), snapshot.active_requests.map(activeRow), $("#active-empty"));
    fillTable($("#errors-table"), snapshot.recent_errors.map(errorRow), $("#errors-empty"));
    for (const engine of loaded) {
      charts.tps.push(engine.model, snapshot.time, engine.rates && engine.rates.generation_throughput);
    }
    charts.rps.push("requests/s", snapshot.time, snapshot.requests_per_second);
    charts.cpu.push("CPU", snapshot.time, snapshot.host && snapshot.host.cpu_percent);
    for (const chart of Object.values(charts)) chart.render(snapshot.time);
  }

  backfill().catch(LLM.reportError);
  LLM.live(update);
})();
