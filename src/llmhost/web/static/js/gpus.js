"use strict";
/* GPUs: a card per GPU (live), six 5-minute charts (backfilled from /api/metrics/gpu, then extended by the
   live feed), and which engine holds how much memory. Without a GPU the page says so and why: no zeros. */
(() => {
  const { fmt, h, $, known } = LLM;
  const area = $("#gpu-area");
  const thresholds = JSON.parse(area.dataset.thresholds);
  const WINDOW = 300;
  const num0 = (v) => fmt.num(v, 0);
  const charts = {
    util: new LLM.TimeChart($("#chart-gpu-util"), { format: num0, yMax: 100 }),
    mem: new LLM.TimeChart($("#chart-gpu-mem"), { format: num0 }),
    temp: new LLM.TimeChart($("#chart-gpu-temp"), { format: num0 }),
    power: new LLM.TimeChart($("#chart-gpu-power"), { format: num0 }),
    clocks: new LLM.TimeChart($("#chart-gpu-clocks"), { format: num0 }),
    pcie: new LLM.TimeChart($("#chart-gpu-pcie"), { format: num0 }),
  };

  /* chart → [line label suffix, field] pairs; one line per GPU and field. */
  const FIELDS = {
    util: [["", "utilization_percent"]],
    mem: [["", "memory_used_mib"]],
    temp: [["", "temperature_c"]],
    power: [["", "power_draw_w"]],
    clocks: [[" SM", "sm_clock_mhz"], [" memory", "memory_clock_mhz"]],
    pcie: [[" TX", "pcie_tx_kib_per_s"], [" RX", "pcie_rx_kib_per_s"]],
  };

  function pushSample(ts, gpus) {
    for (const gpu of gpus) {
      for (const [chart, fields] of Object.entries(FIELDS)) {
        for (const [suffix, field] of fields) charts[chart].push(`GPU ${gpu.index}${suffix}`, ts, gpu[field]);
      }
    }
  }

  function renderCharts(now) {
    for (const chart of Object.values(charts)) chart.render(now);
  }

  function showState(gpus, reason) {
    const none = gpus.length === 0;
    $("#no-gpu").hidden = !none;
    area.hidden = none;
    LLM.setText($("#no-gpu-reason"), reason || "the GPU backend gave no reason (is GPU telemetry off? see gpu_backend)");
  }

  function meter(label, text, fraction, tone) {
    const width = known(fraction) ? Math.max(0, Math.min(1, fraction)) * 100 : 0;
    return [
      h("div", { class: "meter-label" }, `${label} `, h("b", { class: tone || "" }, text)),
      h("div", { class: "bar" }, h("i", { style: `width:${width}%` })),
    ];
  }

  function pcie(gpu) {
    const current = known(gpu.pcie_gen) ? `Gen ${gpu.pcie_gen} x${fmt.text(gpu.pcie_width)}` : LLM.DASH;
    const max = known(gpu.pcie_gen_max) ? `Gen ${gpu.pcie_gen_max} x${fmt.text(gpu.pcie_width_max)}` : LLM.DASH;
    const slow = known(gpu.pcie_gen) && (gpu.pcie_gen < gpu.pcie_gen_max || gpu.pcie_width < gpu.pcie_width_max);
    return h("span", {}, "PCIe ", h("b", { class: slow ? "warn" : "" }, current), ` (max ${max})`);
  }

  function processes(gpu) {
    if (gpu.processes === null || gpu.processes === undefined) {
      return h("p", { class: "hint" }, "The driver does not report which processes use this GPU.");
    }
    if (gpu.processes.length === 0) return h("p", { class: "hint" }, "No process uses this GPU.");
    const rows = gpu.processes.map((p) =>
      h(
        "tr",
        {},
        h("td", {}, p.model ? h("a", { href: "/ui/engines" }, p.model) : `other process (pid ${p.pid})`),
        h("td", { class: "num" }, fmt.mib(p.used_mib)),
        h("td", { class: "num" }, known(p.used_mib) && gpu.memory_total_mib ? fmt.pct((100 * p.used_mib) / gpu.memory_total_mib) : LLM.DASH),
      ),
    );
    return h("table", { class: "table" }, h("thead", {}, h("tr", {}, h("th", {}, "Used by"), h("th", {}, "Memory"), h("th", {}, "Share"))), h("tbody", {}, rows));
  }

  function card(gpu) {
    const figures = LLM.gpuFigures(gpu);
    const tone = (key) => LLM.level(figures[key], thresholds[key]);
    const powerShare = known(gpu.power_draw_w) && gpu.power_limit_w ? gpu.power_draw_w / gpu.power_limit_w : null;
    const memoryText = `${fmt.mib(gpu.memory_used_mib)} of ${fmt.mib(gpu.memory_total_mib)}${gpu.unified_memory ? " (unified: host memory)" : ""}`;
    return h(
      "article",
      { class: "gpu-card", dataset: { level: LLM.gpuLevel(gpu, thresholds), index: gpu.index } },
      h("div", { class: "name" }, `GPU ${gpu.index} · ${fmt.text(gpu.name)}`),
      h("div", { class: "hint mono" }, `${fmt.text(gpu.pci_bus_id)} · ${fmt.text(gpu.uuid)}`),
      ...meter("Utilisation", fmt.pct(gpu.utilization_percent), known(gpu.utilization_percent) ? gpu.utilization_percent / 100 : null, tone("utilization_percent")),
      ...meter("Memory", memoryText, known(figures.memory_percent) ? figures.memory_percent / 100 : null, tone("memory_percent")),
      ...meter("Power", `${known(gpu.power_draw_w) ? `${fmt.int(gpu.power_draw_w)} W` : LLM.DASH} of ${known(gpu.power_limit_w) ? `${fmt.int(gpu.power_limit_w)} W` : LLM.DASH}`, powerShare),
      h(
        "div",
        { class: "facts-line hint" },
        h("span", {}, "Temperature ", h("b", { class: tone("temperature_c") }, known(gpu.temperature_c) ? `${fmt.int(gpu.temperature_c)} °C` : LLM.DASH)),
        " · ",
        h("span", {}, `Fan ${fmt.pct(gpu.fan_percent)}`),
        " · ",
        h("span", {}, `Clocks ${known(gpu.sm_clock_mhz) ? `${fmt.int(gpu.sm_clock_mhz)} MHz` : LLM.DASH} SM, ${known(gpu.memory_clock_mhz) ? `${fmt.int(gpu.memory_clock_mhz)} MHz` : LLM.DASH} memory`),
      ),
      h("div", { class: "facts-line hint" }, pcie(gpu), ` · TX ${fmt.num(gpu.pcie_tx_kib_per_s, 0)} KiB/s · RX ${fmt.num(gpu.pcie_rx_kib_per_s, 0)} KiB/s`),
      h("h3", { style: "margin-top:10px" }, "Memory by engine"),
      processes(gpu),
    );
  }

  function update(snapshot) {
    showState(snapshot.gpus, snapshot.no_gpu_reason);
    if (!snapshot.gpus.length) return;
    $("#gpu-cards").replaceChildren(...snapshot.gpus.map(card));
    pushSample(snapshot.time, snapshot.gpus);
    renderCharts(snapshot.time);
  }

  async function backfill() {
    const body = await LLM.get(`/api/metrics/gpu?window=${WINDOW}`);
    showState(body.gpus, body.no_gpu_reason);
    for (const sample of body.history) pushSample(sample.ts, sample.gpus);
    if (body.gpus.length) renderCharts(Date.now() / 1000);
  }

  backfill()
    .catch(LLM.reportError)
    .finally(() => LLM.live(update));

  LLM.gpuCard = card; // a GPU sample in, a card out: lets a test render a card without GPU hardware
})();
