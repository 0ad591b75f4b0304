"use strict";
/* Engines: a start form generated from the profile JSON schema (checked here, and again by the server), and a
   card per running engine with its state, slots, memory, argv, live stderr tail and 5-minute charts. */
(() => {
  const { fmt, h, $, $$, known } = LLM;
  const profiles = JSON.parse($("#profiles-data").textContent);
  const PRIMARY = ["ctx", "parallel", "threads", "batch", "ubatch", "gpu_layers", "flash_attn", "cache_type_k", "cache_type_v"];
  const HIDDEN = new Set(["path", "aliases"]); // the catalog's business, not an engine parameter
  const WINDOW = 300;
  const LOG_EVERY_MS = 2000;
  let specs = [];

  // --- the form, from the schema ---------------------------------------------------------------------------

  function fieldSpec(name, prop) {
    const spec = { name, title: prop.title || name, description: prop.description || "", enums: [], types: new Set() };
    for (const variant of prop.anyOf || [prop]) {
      if (variant.enum) spec.enums.push(...variant.enum);
      else if (variant.const !== undefined) spec.enums.push(variant.const);
      else if (variant.type === "array") {
        spec.types.add("array");
        spec.item = (variant.items && variant.items.type) || "string";
      } else if (variant.type) {
        spec.types.add(variant.type);
        if (variant.minimum !== undefined) spec.min = variant.minimum;
        if (variant.maximum !== undefined) spec.max = variant.maximum;
      }
    }
    spec.types.delete("null");
    return spec;
  }

  function expectation(spec) {
    const parts = [];
    if (spec.types.has("integer")) {
      let range = "a whole number";
      if (known(spec.min)) range += ` ≥ ${spec.min}`;
      if (known(spec.max)) range += ` ≤ ${spec.max}`;
      parts.push(range);
    } else if (spec.types.has("number")) parts.push("a number");
    if (spec.types.has("boolean")) parts.push("true or false");
    if (spec.types.has("array")) parts.push(spec.item === "number" ? "numbers separated by commas" : "words separated by spaces");
    if (spec.enums.length) parts.push(`one of ${spec.enums.join(", ")}`);
    return parts.join(", or ");
  }

  function inRange(spec, n) {
    return (!known(spec.min) || n >= spec.min) && (!known(spec.max) || n <= spec.max);
  }

  /* {value} to send, {error} to show, or null for a blank field (the configured value stays). */
  function parseField(spec, raw) {
    const text = raw.trim();
    if (!text) return null;
    if (spec.enums.includes(text)) return { value: text };
    if (spec.types.has("boolean") && (text === "true" || text === "false")) return { value: text === "true" };
    if (spec.types.has("integer") && /^-?\d+$/.test(text) && inRange(spec, Number(text))) return { value: Number(text) };
    if (spec.types.has("number") && Number.isFinite(Number(text)) && inRange(spec, Number(text))) return { value: Number(text) };
    if (spec.types.has("array")) {
      const items = spec.item === "number" ? text.split(/[\s,]+/).filter(Boolean).map(Number) : text.split(/\s+/);
      if (items.every((item) => spec.item !== "number" || Number.isFinite(item))) return { value: items };
    }
    if (spec.types.has("string")) return { value: text };
    return { error: `expected ${expectation(spec)}` };
  }

  function widget(spec) {
    const id = `param-${spec.name}`;
    const onlyChoices = spec.types.size === 0 || (spec.types.size === 1 && spec.types.has("boolean"));
    if (onlyChoices) {
      const choices = spec.types.has("boolean") ? ["true", "false"] : spec.enums;
      return h("select", { id, name: spec.name }, h("option", { value: "" }, "configured"), choices.map((c) => h("option", { value: c }, c)));
    }
    const list = spec.enums.length ? `${id}-choices` : null;
    const input = h("input", { id, name: spec.name, list, autocomplete: "off", spellcheck: "false" });
    const choices = list ? h("datalist", { id: list }, spec.enums.map((c) => h("option", { value: c }))) : null;
    return [input, choices];
  }

  function field(spec) {
    const control = widget(spec);
    const node = h(
      "div",
      { class: "field", dataset: { param: spec.name }, title: spec.description },
      h("label", { for: `param-${spec.name}` }, spec.name),
      control,
      h("span", { class: "desc" }, spec.description),
      h("span", { class: "field-error", hidden: true }),
    );
    $("input, select", node).addEventListener("input", () => check(spec));
    return node;
  }

  function check(spec) {
    const node = $(`[data-param="${spec.name}"]`);
    const control = $("input, select", node);
    const parsed = parseField(spec, control.value);
    const error = parsed && parsed.error;
    control.classList.toggle("invalid", Boolean(error));
    const message = $(".field-error", node);
    message.hidden = !error;
    message.textContent = error || "";
    return parsed;
  }

  const shown = (value) => (value === null || value === undefined ? "default" : Array.isArray(value) ? value.join(" ") || "none" : String(value));

  function showConfigured() {
    const profile = profiles[$("#start-model").value] || {};
    for (const spec of specs) {
      const control = $(`#param-${spec.name}`);
      if (control.tagName === "INPUT") control.placeholder = shown(profile[spec.name]);
      else control.options[0].textContent = `configured: ${shown(profile[spec.name])}`;
    }
  }

  async function buildForm() {
    const schema = await LLM.get("/admin/profile-schema");
    specs = Object.entries(schema.properties || {})
      .filter(([name]) => !HIDDEN.has(name))
      .map(([name, prop]) => fieldSpec(name, prop));
    const primary = specs.filter((s) => PRIMARY.includes(s.name)).sort((a, b) => PRIMARY.indexOf(a.name) - PRIMARY.indexOf(b.name));
    $("#param-fields").replaceChildren(...primary.map(field));
    $("#param-fields-more").replaceChildren(...specs.filter((s) => !PRIMARY.includes(s.name)).map(field));
    showConfigured();
  }

  function result(kind, message) {
    const box = $("#start-result");
    box.className = `result ${kind}`;
    box.textContent = message;
    box.hidden = false;
  }

  async function submit(event) {
    event.preventDefault();
    const model = $("#start-model").value;
    const overrides = {};
    const invalid = [];
    for (const spec of specs) {
      const parsed = check(spec);
      if (parsed && parsed.error) invalid.push(spec.name);
      else if (parsed) overrides[spec.name] = parsed.value;
    }
    if (invalid.length) {
      result("error", `Fix ${invalid.join(", ")} first.`);
      return;
    }
    const button = $("#start-button");
    button.disabled = true;
    button.textContent = "Starting…";
    result("info", `Starting ${model}…`);
    try {
      const status = await LLM.post(`/admin/models/${LLM.modelPath(model)}/start`, { overrides });
      result("ok", `Started ${status.model}: pid ${fmt.text(status.pid)}, port ${fmt.text(status.port)}.`);
    } catch (error) {
      const refused = error.status === 429 ? "Refused, the cap on running engines is reached: " : "";
      result("error", `${refused}${error.message} (HTTP ${error.status || "error"})`);
    } finally {
      button.disabled = false;
      button.textContent = "Start engine";
    }
  }

  // --- engine cards ------------------------------------------------------------------------------------

  /* chart → how to read it live from the feed; stored values are multiplied by `scale` like the live ones */
  const CHARTS = {
    engine_generation_throughput_tokens_per_second: { live: (e) => e.rates && e.rates.generation_throughput },
    engine_kv_cache_usage_ratio: { scale: 100, yMax: 100, live: (e) => e.stats && e.stats.kv_cache_usage_ratio },
    engine_busy_slots: { live: (e) => (e.stats && e.stats.slots ? e.stats.slots.filter((s) => s.is_processing).length : null) },
    engine_resident_memory_bytes: { scale: 1 / 1048576, live: (e, p) => (p && known(p.rss_mib) ? p.rss_mib * 1048576 : null) },
    engine_cpu_ratio: { live: (e, p) => (p && known(p.cpu_percent) ? p.cpu_percent / 100 : null) },
  };
  const cards = new Map(); // model → {node, charts, timer}

  function createCharts(node, model) {
    const charts = {};
    for (const chartNode of $$("[data-chart]", node)) {
      const name = chartNode.dataset.chart;
      const config = CHARTS[name];
      const label = chartNode.previousElementSibling.textContent;
      charts[name] = { chart: new LLM.TimeChart(chartNode, { yMax: config.yMax ?? null, height: 140 }), label, config };
      LLM.series(name, WINDOW, { model })
        .then((lines) => {
          const scale = config.scale ?? 1;
          for (const line of lines) charts[name].chart.setLine(label, line.points.map(([ts, v]) => [ts, v * scale]));
          charts[name].chart.render();
        })
        .catch(LLM.reportError);
    }
    return charts;
  }

  async function refreshLog(model, pre) {
    const body = await LLM.get(`/admin/engines/${LLM.modelPath(model)}/log?lines=200`);
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    const text = body.lines.join("\n");
    if (pre.textContent !== text) pre.textContent = text;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function engineAction(model, action, button) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = action === "stop" ? "Stopping…" : "Restarting…";
    try {
      await LLM.post(`/admin/models/${LLM.modelPath(model)}/${action}`);
      LLM.notice("");
    } catch (error) {
      LLM.notice(`${label} ${model}: ${error.message}`);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  function createCard(model) {
    const node = $("#engine-template").content.firstElementChild.cloneNode(true);
    node.dataset.model = model;
    $("[data-field=model]", node).textContent = model;
    const list = $("#engine-list");
    const after = [...list.children].find((card) => card.dataset.model > model);
    list.insertBefore(node, after || null);
    for (const button of $$("button[data-action]", node)) {
      button.addEventListener("click", () => engineAction(model, button.dataset.action, button));
    }
    const pre = $("[data-field=log]", node);
    const poll = () => refreshLog(model, pre).catch(() => {});
    poll();
    const card = { node, charts: createCharts(node, model), timer: setInterval(poll, LOG_EVERY_MS) };
    cards.set(model, card);
    return card;
  }

  function removeCard(model) {
    const card = cards.get(model);
    clearInterval(card.timer);
    for (const { chart } of Object.values(card.charts)) chart.destroy();
    card.node.remove();
    cards.delete(model);
  }

  function slots(engine) {
    const list = engine.stats && engine.stats.slots;
    if (!list || !list.length) return [h("span", { class: "hint" }, `${fmt.int(engine.parallel)} configured, state not reported yet`)];
    return list.map((s) =>
      h("span", { class: s.is_processing ? "slot busy" : "slot" }, `#${s.id} ${s.is_processing ? `busy · ${fmt.int(s.n_decoded)} decoded` : "idle"}`),
    );
  }

  function memory(engine) {
    const devices = Object.entries(engine.memory_mib || {});
    if (!devices.length) return [h("span", {}, "Memory by buffer: not reported yet")];
    return devices.map(([device, kinds]) =>
      h("div", {}, `${device}: `, Object.entries(kinds).map(([kind, mib], i) => [i ? " · " : "", `${kind} `, h("b", {}, fmt.mib(mib))])),
    );
  }

  const quote = (arg) => (/[\s"'$]/.test(arg) ? `'${arg.replace(/'/g, "'\\''")}'` : arg);

  function updateCard(card, engine, process) {
    const { node } = card;
    const set = (field, text) => LLM.setText($(`[data-field=${field}]`, node), text);
    const state = $("[data-field=state]", node);
    set("state", engine.state);
    state.dataset.state = engine.state;
    const error = $("[data-field=error]", node);
    error.hidden = !engine.last_error;
    LLM.setText(error, engine.last_error || "");
    set("pid", fmt.text(engine.pid));
    set("port", fmt.text(engine.port));
    set("uptime", fmt.duration(engine.uptime_s));
    set("restarts", fmt.int(engine.restarts));
    set("ctx", `${fmt.int(engine.ctx)} × ${fmt.int(engine.parallel)}`);
    set("in_flight", fmt.int(engine.in_flight));
    set("queue", fmt.int(engine.waiting));
    set("tps", fmt.num(engine.rates && engine.rates.generation_throughput, 1));
    set("kv", fmt.ratio(engine.stats && engine.stats.kv_cache_usage_ratio));
    set("rss", fmt.mib(process && process.rss_mib));
    set("cpu", fmt.pct(process && process.cpu_percent));
    set("pinned", engine.pinned ? "yes" : "no");
    set("argv", engine.argv.map(quote).join(" "));
    $("[data-field=slots]", node).replaceChildren(...slots(engine));
    $("[data-field=memory]", node).replaceChildren(...memory(engine));
  }

  function pushCharts(card, engine, process, ts) {
    for (const { chart, label, config } of Object.values(card.charts)) {
      const value = config.live(engine, process);
      chart.push(label, ts, known(value) ? value * (config.scale ?? 1) : null);
      chart.render(ts);
    }
  }

  function update(snapshot) {
    const running = snapshot.engines.filter((e) => e.state !== "stopped");
    const processes = new Map(((snapshot.host && snapshot.host.processes) || []).map((p) => [p.pid, p]));
    for (const model of [...cards.keys()]) if (!running.some((e) => e.model === model)) removeCard(model);
    for (const engine of running) {
      const card = cards.get(engine.model) || createCard(engine.model);
      const process = processes.get(engine.pid);
      updateCard(card, engine, process);
      pushCharts(card, engine, process, snapshot.time);
    }
    $("#engines-empty").hidden = running.length > 0;
  }

  $("#start-form").addEventListener("submit", submit);
  $("#start-model").addEventListener("change", showConfigured);
  buildForm().catch((error) => {
    $("#param-fields").replaceChildren(h("p", { class: "bad" }, `The profile schema could not be loaded: ${error.message}`));
  });
  LLM.live(update);
})();
