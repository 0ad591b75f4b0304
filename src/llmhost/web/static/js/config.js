"use strict";
/* Config: the tensor split as one slider per GPU (checked here as you drag, then by the server in a dry run),
   presets, the YAML editor (validate, apply), named configuration presets, and the change history with rollback. */
(() => {
  const { fmt, h, $, $$, api, get, post, modelPath, notice, reportError } = LLM;
  const DRY_RUN_DELAY_MS = 250;
  const split = { gpus: [], weights: [], preset: "custom", single: 0, timer: null, asked: 0 };

  // --- the split -------------------------------------------------------------------------------------------

  const model = () => $("#split-model").value;
  const splitUrl = () => `/admin/models/${modelPath(model())}/split`;

  function describe(fields) {
    if (!fields) return "—";
    if (fields.split_mode === "none") return `whole model on GPU ${fields.main_gpu ?? 0}`;
    if (!fields.tensor_split) return fields.split_mode ? `llama.cpp's default shares, mode ${fields.split_mode}` : "llama.cpp's default (by free memory)";
    const shares = fields.tensor_split.map((v) => `${fmt.num(v * 100, 1)} %`).join(" · ");
    return `${shares}, mode ${fields.split_mode || "layer"}`;
  }

  /* What the sliders say, or the reason they cannot be applied. */
  function proposal() {
    const total = split.weights.reduce((a, b) => a + b, 0);
    if (split.preset === "single") return { body: { preset: "single", gpus: [split.single] } };
    if (split.weights.length !== split.gpus.length) return { error: "one share per GPU is needed" };
    if (split.weights.some((w) => !(w >= 0))) return { error: "shares must be zero or more" };
    if (total <= 0) return { error: "at least one GPU needs a share above zero" };
    return {
      body: { preset: "custom", ratios: split.weights, gpus: split.gpus.map((g) => g.index), mode: $("#split-mode").value },
      shares: split.weights.map((w) => w / total),
    };
  }

  function renderSliders() {
    const rows = split.gpus.map((gpu, i) => {
      const value = h("output", { class: "split-share", id: `split-share-${gpu.index}` });
      const slider = h("input", {
        type: "range", min: "0", max: "100", step: "1", value: String(split.weights[i] ?? 0),
        id: `split-slider-${gpu.index}`, "aria-label": `share of GPU ${gpu.index}`, dataset: { gpu: String(gpu.index) },
        oninput: (event) => {
          split.weights[i] = Number(event.target.value);
          split.preset = "custom";
          changed();
        },
      });
      const name = `GPU ${gpu.index}${gpu.name ? ` · ${gpu.name}` : ""}`;
      const memory = `${fmt.mib(gpu.free_mib)} free of ${fmt.mib(gpu.total_mib)}${gpu.unified ? " (shared with the host)" : ""}`;
      return h("div", { class: "split-row" }, h("label", { for: slider.id }, h("strong", { text: name }), h("span", { class: "hint", text: memory })), slider, value);
    });
    $("#split-sliders").replaceChildren(...rows);
    $("#split-single-gpu").replaceChildren(...split.gpus.map((g) => h("option", { value: String(g.index), text: `GPU ${g.index}` })));
  }

  function changed() {
    const { body, shares, error } = proposal();
    split.gpus.forEach((gpu, i) => {
      const share = split.preset === "single" ? (gpu.index === split.single ? 1 : 0) : shares ? shares[i] : null;
      $(`#split-slider-${gpu.index}`).value = String(split.weights[i] ?? 0);
      LLM.setText($(`#split-share-${gpu.index}`), share === null ? "—" : `${fmt.num(share * 100, 1)} %`);
    });
    $("#split-mode").disabled = split.preset === "single";
    $("#split-apply").disabled = Boolean(error);
    showValidation(error ? { ok: false, text: error } : { ok: null, text: "checking…" });
    LLM.setText($("#split-proposed"), body ? describe(dryShares(body, shares)) : "—");
    clearTimeout(split.timer);
    if (body) split.timer = setTimeout(() => dryRun(body), DRY_RUN_DELAY_MS);
  }

  function dryShares(body, shares) {
    if (body.preset === "single") return { split_mode: "none", main_gpu: split.single };
    return { tensor_split: shares, split_mode: body.mode };
  }

  function showValidation({ ok, text }) {
    const node = $("#split-validation");
    node.textContent = text;
    node.className = `split-validation ${ok === true ? "good" : ok === false ? "bad" : ""}`;
  }

  /* The server checks the whole configuration the split would give (same checks as an apply). */
  async function dryRun(body) {
    const asked = ++split.asked;
    try {
      const answer = await post(splitUrl(), { ...body, dry_run: true });
      if (asked !== split.asked) return;
      showValidation(answer.valid ? { ok: true, text: "valid: ready to apply" } : { ok: false, text: answer.errors.join("; ") });
      $("#split-apply").disabled = !answer.valid;
      LLM.setText($("#split-proposed"), describe(answer.split));
    } catch (error) {
      if (asked === split.asked) showValidation({ ok: false, text: error.message });
    }
  }

  /* A preset button fills the sliders with what the server computes for it; Apply then sends those shares. */
  async function choosePreset(preset) {
    if (preset === "single") {
      split.preset = "single";
      split.single = Number($("#split-single-gpu").value);
      split.weights = split.gpus.map((g) => (g.index === split.single ? 100 : 0));
      changed();
      return;
    }
    try {
      const answer = await post(splitUrl(), { preset, mode: $("#split-mode").value, dry_run: true });
      split.preset = "custom";
      split.weights = answer.split.tensor_split.map((v) => v * 100); // exact until a slider moves
      changed();
    } catch (error) {
      showValidation({ ok: false, text: error.message });
    }
  }

  async function loadSplit() {
    const state = await get(splitUrl());
    split.gpus = state.gpus;
    $("#split-none").hidden = state.gpus.length > 0;
    $("#split-area").hidden = state.gpus.length === 0;
    LLM.setText($("#split-none-reason"), state.no_gpu_reason || "");
    LLM.setText($("#split-current"), describe(state.current));
    LLM.setText($("#split-previous"), state.previous ? `${describe(state.previous)} (before change #${state.previous.change})` : "—");
    if (!state.gpus.length) return;
    const current = state.current;
    split.preset = current.split_mode === "none" ? "single" : "custom";
    split.single = current.main_gpu ?? 0;
    split.weights = state.gpus.map((g, i) =>
      current.split_mode === "none" ? (g.index === split.single ? 100 : 0) : ((current.tensor_split || [])[i] ?? 1 / state.gpus.length) * 100,
    );
    if (current.split_mode === "row") $("#split-mode").value = "row";
    renderSliders();
    changed();
  }

  async function applySplit() {
    const { body, error } = proposal();
    if (error) return;
    const button = $("#split-apply");
    button.disabled = true;
    showResult($("#split-result"), "info", "Applying: the engine restarts once its in-flight requests finish…");
    try {
      const answer = await post(splitUrl(), body);
      showResult($("#split-result"), "ok", `Applied as change #${answer.change.id}: ${describe(answer.split)}; restarted ${answer.change.restarted.join(", ") || "nothing (the model was not loaded)"}.`);
    } catch (error) {
      showResult($("#split-result"), "error", error.message);
    } finally {
      button.disabled = false;
      await Promise.all([loadSplit(), loadHistory(), loadDocument()]).catch(reportError);
    }
  }

  // --- the editor ------------------------------------------------------------------------------------------

  function showResult(node, kind, text) {
    node.className = `result ${kind}`;
    node.textContent = text;
    node.hidden = false;
  }

  async function loadDocument() {
    const config = await get("/admin/config");
    $("#config-yaml").value = config.yaml;
    LLM.setText($("#config-path"), config.path ? `file: ${config.path}` : "no config file: changes live until the service stops");
  }

  async function validateDocument() {
    const answer = await post("/admin/config/validate", { yaml: $("#config-yaml").value });
    if (answer.valid) showResult($("#config-result"), "ok", "Valid: Apply restarts only the engines whose parameters change.");
    else showResult($("#config-result"), "error", `Not valid, nothing changed: ${answer.errors.join("; ")}`);
    return answer.valid;
  }

  async function applyDocument() {
    try {
      const change = await post("/admin/config/apply", { yaml: $("#config-yaml").value });
      showResult($("#config-result"), "ok", `Applied as change #${change.id}; restarted: ${change.restarted.join(", ") || "none"}.`);
    } catch (error) {
      showResult($("#config-result"), "error", error.message);
    }
    await Promise.all([loadHistory(), loadSplit(), loadDocument()]).catch(reportError);
  }

  // --- presets -----------------------------------------------------------------------------------------------

  async function loadPresets() {
    const { presets } = await get("/admin/config/presets");
    const rows = presets.map((preset) =>
      h("tr", { dataset: { preset: preset.name } },
        h("td", { class: "mono", text: preset.name }),
        h("td", { text: `${new Date(preset.created * 1000).toLocaleString("en-GB")}` }),
        h("td", { text: preset.who }),
        h("td", { text: Object.keys(preset.sections).join(", ") }),
        h("td", {}, h("div", { class: "actions" },
          h("button", { type: "button", text: "Apply", onclick: () => applyPreset(preset.name) }),
          h("button", { type: "button", class: "danger", text: "Delete", onclick: () => deletePreset(preset.name) }))),
      ),
    );
    LLM.fillTable($("#presets-table"), rows, $("#presets-empty"));
  }

  async function savePreset(event) {
    event.preventDefault();
    const name = $("#preset-name").value.trim();
    try {
      await post("/admin/config/presets", { name });
      $("#preset-name").value = "";
      notice("");
    } catch (error) {
      reportError(error);
    }
    await loadPresets().catch(reportError);
  }

  async function applyPreset(name) {
    try {
      const change = await post(`/admin/config/presets/${encodeURIComponent(name)}/apply`);
      notice(`Preset ${name} applied as change #${change.id}.`, "info");
    } catch (error) {
      reportError(error);
    }
    await Promise.all([loadHistory(), loadSplit(), loadDocument()]).catch(reportError);
  }

  async function deletePreset(name) {
    await api("DELETE", `/admin/config/presets/${encodeURIComponent(name)}`).catch(reportError);
    await loadPresets().catch(reportError);
  }

  // --- history -----------------------------------------------------------------------------------------------

  async function loadHistory() {
    const { changes } = await get("/admin/config/history");
    const newest = [...changes].reverse();
    const rows = newest.map((change) =>
      h("tr", { dataset: { change: String(change.id), result: change.result } },
        h("td", { class: "num", text: String(change.id) }),
        h("td", { text: new Date(change.time * 1000).toLocaleString("en-GB") }),
        h("td", { text: change.who }),
        h("td", { text: change.source }),
        h("td", {}, LLM.badge(change.result)),
        h("td", { text: change.restarted.join(", ") || "—" }),
        h("td", {}, change.diff ? h("details", {}, h("summary", { text: "diff" }), h("pre", { class: "mono diff", text: change.diff })) : "—"),
        h("td", {}, change.result === "applied" ? h("button", { type: "button", text: "Roll back", title: "apply the configuration from before this change", onclick: () => rollback(change.id) }) : null),
      ),
    );
    LLM.fillTable($("#history-table"), rows, $("#history-empty"));
    showLast(newest[0]);
  }

  function showLast(change) {
    $("#last-apply-empty").hidden = Boolean(change);
    const node = $("#last-apply");
    if (!change) {
      node.hidden = true;
      return;
    }
    const kind = change.result === "applied" ? "ok" : "error";
    const restarted = change.restarted.length ? `restarted ${change.restarted.join(", ")}` : "no engine restarted";
    const why = change.error ? `: ${change.error}` : "";
    showResult(node, kind, `#${change.id} ${change.result} (${change.source}, by ${change.who}, ${fmt.time(change.time)}), ${restarted}${why}`);
  }

  async function rollback(id) {
    try {
      const change = await post(`/admin/config/rollback/${id}`);
      notice(`Change #${id} rolled back as change #${change.id}.`, "info");
    } catch (error) {
      reportError(error);
    }
    await Promise.all([loadHistory(), loadSplit(), loadDocument()]).catch(reportError);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $$("[data-preset]").forEach((button) => button.addEventListener("click", () => choosePreset(button.dataset.preset)));
    $("#split-mode").addEventListener("change", changed);
    $("#split-model").addEventListener("change", () => loadSplit().catch(reportError));
    $("#split-apply").addEventListener("click", applySplit);
    $("#config-validate").addEventListener("click", () => validateDocument().catch(reportError));
    $("#config-apply").addEventListener("click", applyDocument);
    $("#config-reload").addEventListener("click", () => loadDocument().catch(reportError));
    $("#preset-form").addEventListener("submit", savePreset);
    Promise.all([loadSplit(), loadDocument(), loadPresets(), loadHistory()]).catch(reportError);
  });
})();
