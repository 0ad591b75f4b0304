"use strict";
/* Optimization: the advisor's report (/api/advice): score and breakdown, recommendations with evidence,
   efficiency and cost (a bar chart against API prices, measured energy per token), memory fit per device set,
   context lengths. A figure that was not measured is "—" with the reason, never 0. */
(() => {
  const { fmt, h, $, known } = LLM;
  let report = null;
  const charts = {};

  const cell = (text, cls) => h("td", { class: cls || null }, text);
  const numCell = (text) => cell(text, "num");
  const valueText = (v) => {
    if (v === null || v === undefined) return LLM.DASH;
    if (Array.isArray(v)) return v.join(", ");
    if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${valueText(x)}`).join(", ");
    return typeof v === "number" ? fmt.num(v, 4) : String(v);
  };

  function renderSource(body) {
    const when = fmt.time(body.generated_at);
    const measured = body.source === "service" ? `measured over the last ${fmt.duration(body.window_s)}` : "offline";
    $("#opt-source").textContent = `Report of ${when}, ${measured}. ${body.notes.join(" ")}`;
  }

  function renderScore(score) {
    $("#opt-score").textContent = known(score.value) ? String(score.value) : LLM.DASH;
    const rows = score.parts.map((part) =>
      h(
        "tr",
        { dataset: { part: part.key } },
        cell(part.key),
        numCell(part.applies ? `${fmt.num(part.points, 2)} / ${part.max_points}` : "n/a"),
        cell(part.measures, "hint"),
        cell(part.lost_because.length ? part.lost_because.join("; ") : LLM.DASH),
      ),
    );
    LLM.fillTable($("#opt-parts"), rows);
  }

  function recommendation(rec) {
    const evidence = rec.evidence.map((e) =>
      h("tr", {}, cell(e.what), cell(valueText(e.value), "mono"), cell(e.source, "hint")),
    );
    return h(
      "article",
      { class: "opt-rec", dataset: { kind: rec.kind, severity: rec.severity } },
      h("div", { class: "opt-rec-title" }, h("span", { class: "tag opt-sev" }, rec.severity), " ", h("b", {}, rec.title)),
      h("table", { class: "table opt-evidence" }, h("thead", {}, h("tr", {}, h("th", {}, "Evidence"), h("th", {}, "Value"), h("th", {}, "Source"))), h("tbody", {}, evidence)),
      h("p", { class: "opt-do" }, h("b", {}, "Do: "), rec.action),
      h("p", { class: "opt-expect" }, h("b", {}, "Expect: "), rec.effect),
    );
  }

  function renderRecommendations(recs) {
    $("#opt-recs").replaceChildren(...recs.map(recommendation));
    $("#opt-recs-empty").hidden = recs.length > 0;
    $("#opt-recs-count").textContent = `(${recs.length})`;
  }

  function renderEfficiency(eff) {
    const currency = eff.currency;
    $("#opt-price").textContent = known(eff.electricity_price_per_kwh)
      ? `electricity at ${fmt.num(eff.electricity_price_per_kwh, 4)} ${currency}/kWh`
      : "no electricity price set (advisor.electricity_price_per_kwh)";
    $("#opt-cost-head").textContent = `${currency} per M tokens`;
    const rows = eff.models.map((m) => {
      const notes = [m.not_measured || m.power_basis, m.shared_with.length ? `GPU shared with ${m.shared_with.join(", ")}` : null];
      return h(
        "tr",
        { dataset: { model: m.model } },
        cell(m.model),
        cell(m.gpus.length ? `${m.gpus.join(", ")} (${m.gpus_from})` : "CPU"),
        numCell(known(m.power_w) ? `${fmt.num(m.power_w, 1)} W` : LLM.DASH),
        numCell(fmt.num(m.tokens_per_second, 1)),
        numCell(fmt.num(m.joules_per_token, 3)),
        numCell(fmt.num(m.kwh_per_million_tokens, 3)),
        numCell(fmt.num(m.cost_per_million_tokens, 4)),
        cell(notes.filter(Boolean).join("; ") || LLM.DASH, "hint"),
      );
    });
    LLM.fillTable($("#opt-eff"), rows);
    const costs = eff.models.filter((m) => known(m.cost_per_million_tokens)).map((m) => [`${m.model} (here)`, m.cost_per_million_tokens]);
    const apis = eff.api_prices.flatMap((p) => [[`${p.name} input`, p.input_per_m], [`${p.name} output`, p.output_per_m]]);
    drawBars("cost", $("#chart-cost"), [...costs, ...apis], currency);
    const energy = eff.models.filter((m) => known(m.joules_per_token)).map((m) => [m.model, m.joules_per_token]);
    drawBars("energy", $("#chart-energy"), energy, "J");
  }

  /* Bars on the vendored uPlot: one category per bar, the label under it. */
  function drawBars(key, node, bars, unit) {
    if (charts[key]) charts[key].destroy();
    charts[key] = null;
    node.dataset.bars = String(bars.length);
    let empty = node.querySelector(".chart-empty");
    if (!empty) {
      empty = h("div", { class: "chart-empty", text: node.dataset.empty || "no data" });
      node.append(empty);
    }
    empty.hidden = bars.length > 0;
    if (!bars.length) return;
    const xs = bars.map((_, i) => i);
    const ys = bars.map(([, v]) => Number(v));
    const axis = { stroke: "#8b949e", grid: { stroke: "#21262d", width: 1 }, ticks: { stroke: "#30363d", width: 1 } };
    const options = {
      width: Math.max(node.clientWidth, 240),
      height: 200,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.5, bars.length - 0.5] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
      axes: [
        { ...axis, splits: () => xs, values: (u, ticks) => ticks.map((t) => (bars[t] ? bars[t][0] : "")), size: 40 },
        { ...axis, size: 64, values: (u, ticks) => ticks.map((v) => `${fmt.num(v, 3)} ${unit}`) },
      ],
      series: [{}, { label: unit, stroke: "#58a6ff", fill: "#58a6ff88", width: 1, paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } }],
    };
    charts[key] = new uPlot(options, [xs, ys], node);
  }

  function renderFit(fits) {
    const select = $("#opt-fit-model");
    const chosen = select.value;
    select.replaceChildren(...fits.map((f) => h("option", { value: f.model }, f.model)));
    if (fits.some((f) => f.model === chosen)) select.value = chosen;
    const fit = fits.find((f) => f.model === select.value);
    if (!fit) {
      $("#opt-fit-need").textContent = "No local model in the catalog.";
      LLM.fillTable($("#opt-fit"), []);
      return;
    }
    const n = fit.need;
    const configured = fit.configured;
    $("#opt-fit-need").textContent =
      `ctx ${fmt.int(n.ctx_per_slot)} × ${n.slots} slot(s) needs ${fmt.mib(n.total_mib)} (weights ${fmt.mib(n.weights_mib)}, KV ${fmt.mib(n.kv_mib)}, ` +
      `compute ${fmt.mib(n.compute_mib)}, attention scores ${fmt.mib(n.attention_scores_mib)}; estimate). ` +
      `A q8_0 KV cache frees ${fmt.mib(n.kv_q8_0_frees_mib)}, q4_0 ${fmt.mib(n.kv_q4_0_frees_mib)}; ` +
      `flash attention (${n.flash_attention}) frees ${fmt.mib(n.flash_attention_frees_mib)}. ` +
      `Configured on ${valueText(configured.devices_mib)} MiB: ${configured.fits ? "fits" : "does NOT fit"}` +
      (configured.engine_mib ? `; the engine reports ${valueText(configured.engine_mib)} MiB.` : ".");
    const rows = fit.sets.map((s) =>
      h(
        "tr",
        { dataset: { fits: String(s.fits) } },
        cell(s.note ? `${s.label} (${s.note})` : s.label),
        cell(s.fits ? "yes" : "no", s.fits ? "ok-text" : "bad"),
        cell(s.tensor_split ? s.tensor_split.join(", ") : s.split_mode ? `${s.split_mode} (main GPU ${s.main_gpu})` : LLM.DASH, "mono"),
        numCell(fmt.mib(Object.values(s.need_mib).reduce((a, b) => a + b, 0))),
        numCell(fmt.mib(Object.values(s.capacity_mib).reduce((a, b) => a + b, 0))),
        numCell(s.free_after_mib >= 0 ? fmt.mib(s.free_after_mib) : `short by ${fmt.mib(-s.free_after_mib)}`),
        numCell(`${fmt.int(s.context_tokens)} tokens`),
        numCell(fmt.int(s.context_per_slot)),
      ),
    );
    LLM.fillTable($("#opt-fit"), rows);
  }

  function renderContexts(contexts) {
    const rows = contexts.map((c) =>
      h("tr", {}, cell(c.model), numCell(fmt.int(c.true_context)), numCell(fmt.int(c.ollama_num_ctx)), numCell(fmt.int(c.ctx_per_slot)), numCell(String(c.slots)), numCell(fmt.int(c.total_context))),
    );
    LLM.fillTable($("#opt-ctx"), rows);
  }

  function render(body) {
    report = body;
    renderSource(body);
    renderScore(body.score);
    renderRecommendations(body.recommendations);
    renderEfficiency(body.efficiency);
    renderFit(body.fit);
    renderContexts(body.contexts);
  }

  async function load() {
    const button = $("#opt-refresh");
    button.disabled = true;
    try {
      render(await LLM.get("/api/advice"));
      LLM.notice("");
    } catch (error) {
      LLM.reportError(error);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#opt-refresh").addEventListener("click", load);
    $("#opt-fit-model").addEventListener("change", () => report && renderFit(report.fit));
    load();
  });
})();
