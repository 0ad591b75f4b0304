"use strict";
/* Models: the server-rendered catalog gets its live state (loaded, pinned) from the feed and its buttons act
   through the admin API; performance per model and a side-by-side comparison come from /api/metrics/models. */
(() => {
  const { fmt, h, $, $$, known } = LLM;
  const catalog = JSON.parse($("#catalog-data").textContent);
  const byName = new Map(catalog.map((m) => [m.name, m]));
  const rows = new Map($$("#catalog tbody tr[data-model]").map((row) => [row.dataset.model, row]));
  const engines = new Map(); // model -> engine view from the feed
  let performance = new Map(); // model -> aggregate
  const chart = new LLM.TimeChart($("#chart-model-tps"), { window: 3600 });

  for (const cell of $$("#catalog [data-bytes]")) cell.textContent = fmt.bytes(Number(cell.dataset.bytes));
  for (const cell of $$("#catalog [data-count]")) cell.textContent = fmt.count(cell.dataset.count);

  // --- catalog state and actions ------------------------------------------------------------------------

  function showState(model, row) {
    const engine = engines.get(model);
    const state = engine ? engine.state : "stopped";
    const pinned = Boolean(engine && engine.pinned);
    const badge = $("[data-field=state]", row);
    LLM.setText(badge, state);
    badge.dataset.state = state;
    $("[data-field=pinned]", row).hidden = !pinned;
    if (row.dataset.busy) return;
    $("[data-action=load]", row).disabled = state !== "stopped" && state !== "failed";
    $("[data-action=unload]", row).disabled = state === "stopped";
    const pin = $("[data-action=pin]", row);
    pin.disabled = false;
    LLM.setText(pin, pinned ? "Unpin" : "Pin");
  }

  const ACTIONS = {
    load: (model) => LLM.post(`/admin/models/${LLM.modelPath(model)}/load`),
    unload: (model) => LLM.post(`/admin/models/${LLM.modelPath(model)}/unload`),
    pin: (model) => {
      const engine = engines.get(model);
      return LLM.post(`/admin/models/${LLM.modelPath(model)}/pin`, { pinned: !(engine && engine.pinned) });
    },
  };

  async function act(row, action, button) {
    const model = row.dataset.model;
    row.dataset.busy = "1";
    for (const b of $$("button", row)) b.disabled = true;
    const label = button.textContent;
    button.textContent = { load: "Loading…", unload: "Unloading…", pin: "…" }[action];
    try {
      await ACTIONS[action](model);
      LLM.notice("");
    } catch (error) {
      LLM.notice(`${label} ${model}: ${error.message}`);
    } finally {
      delete row.dataset.busy;
      button.textContent = label;
      showState(model, row);
    }
  }

  $("#catalog").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.closest("tr"), button.dataset.action, button);
  });

  // --- performance ----------------------------------------------------------------------------------------

  const errorsOf = (a) => (a.by_state && a.by_state.error) || 0;

  const pick = (p, key) => (p ? p[key] : null);

  function perfRow(a) {
    return h(
      "tr",
      { dataset: { model: a.key } },
      h("td", {}, a.key),
      h("td", { class: "num" }, fmt.int(a.requests)),
      h("td", { class: "num" }, fmt.int(errorsOf(a))),
      h("td", { class: "num" }, fmt.num(pick(a.tokens_per_second, "p50"), 1)),
      h("td", { class: "num" }, fmt.num(pick(a.tokens_per_second, "p90"), 1)),
      h("td", { class: "num" }, fmt.ms(pick(a.ttft_ms, "p50"))),
      h("td", { class: "num" }, fmt.ms(pick(a.ttft_ms, "p90"))),
      h("td", { class: "num" }, fmt.ms(pick(a.duration_ms, "p50"))),
      h("td", { class: "num" }, fmt.int(a.completion_tokens)),
    );
  }

  async function loadPerformance() {
    const window = Number($("#perf-window").value);
    const body = await LLM.get(`/api/metrics/models?window=${window}`);
    performance = new Map(body.models.map((a) => [a.key, a]));
    LLM.fillTable($("#perf-table"), body.models.map(perfRow), $("#perf-empty"));
    chart.window = window;
    chart.clear();
    const history = body.throughput_history;
    for (const line of (history && history.lines) || []) {
      chart.setLine(line.labels.model, line.points.map((p) => [p.ts, p.value]));
    }
    chart.render();
    compare();
  }

  // --- comparison ---------------------------------------------------------------------------------------

  /* [label, value(model), format, better: "high" | "low" | null] */
  const FIGURES = [
    ["Requests", (m) => pick(performance.get(m), "requests"), fmt.int, null],
    ["Tokens/s p50", (m) => pick(pick(performance.get(m), "tokens_per_second"), "p50"), (v) => fmt.num(v, 1), "high"],
    ["Tokens/s p90", (m) => pick(pick(performance.get(m), "tokens_per_second"), "p90"), (v) => fmt.num(v, 1), "high"],
    ["TTFT p50", (m) => pick(pick(performance.get(m), "ttft_ms"), "p50"), fmt.ms, "low"],
    ["TTFT p90", (m) => pick(pick(performance.get(m), "ttft_ms"), "p90"), fmt.ms, "low"],
    ["Duration p50", (m) => pick(pick(performance.get(m), "duration_ms"), "p50"), fmt.ms, "low"],
    ["Errors", (m) => (performance.get(m) ? errorsOf(performance.get(m)) : null), fmt.int, "low"],
    ["State", (m) => (engines.get(m) ? engines.get(m).state : "stopped"), fmt.text, null],
    ["True context", (m) => pick(byName.get(m), "true_ctx"), fmt.int, null],
    ["Context per slot", (m) => pick(byName.get(m), "ctx"), fmt.int, null],
    ["Parallel slots", (m) => pick(byName.get(m), "parallel"), fmt.int, null],
    ["Size", (m) => pick(byName.get(m), "size"), fmt.bytes, null],
    ["Quantization", (m) => pick(byName.get(m), "quantization"), fmt.text, null],
  ];

  function better(a, b, direction) {
    if (!direction || !known(a) || !known(b) || a === b) return [false, false];
    const aWins = direction === "high" ? a > b : a < b;
    return [aWins, !aWins];
  }

  function compare() {
    const a = $("#compare-a").value;
    const b = $("#compare-b").value;
    LLM.setText($("#compare-a-name"), a || LLM.DASH);
    LLM.setText($("#compare-b-name"), b || LLM.DASH);
    const rowsOut = FIGURES.map(([label, value, format, direction]) => {
      const [va, vb] = [value(a), value(b)];
      const [aWins, bWins] = better(va, vb, direction);
      return h(
        "tr",
        {},
        h("td", {}, label),
        h("td", { class: aWins ? "better" : "" }, format(va)),
        h("td", { class: bWins ? "better" : "" }, format(vb)),
      );
    });
    LLM.fillTable($("#compare-table"), rowsOut);
  }

  function setupCompare() {
    const names = catalog.map((m) => m.name);
    for (const [id, index] of [["#compare-a", 0], ["#compare-b", 1]]) {
      const select = $(id);
      select.replaceChildren(...names.map((name) => h("option", { value: name }, name)));
      select.value = names[Math.min(index, names.length - 1)] || "";
      select.addEventListener("change", compare);
    }
  }

  setupCompare();
  $("#perf-window").addEventListener("change", () => loadPerformance().catch(LLM.reportError));
  loadPerformance().catch(LLM.reportError);
  setInterval(() => loadPerformance().catch(LLM.reportError), 5000);

  LLM.live((snapshot) => {
    engines.clear();
    for (const engine of snapshot.engines) engines.set(engine.model, engine);
    for (const [model, row] of rows) showState(model, row);
    compare();
  });
})();
