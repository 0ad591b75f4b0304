"use strict";
/* Tuning: jobs (/admin/tune/jobs), a job's trials, its objective over trials with the best so far, parameter
   importance, best against baseline, live progress over the job's event stream while it runs, Stop and Apply. */
(() => {
  const { fmt, h, $ } = LLM;
  const KEY_STORAGE = "llmhost.adminKey";
  const STATES = { completed: "done", running: "loading", pending: "queued", failed: "failed", stopped: "cancelled", interrupted: "cancelled" };
  let chosen = new URLSearchParams(window.location.search).get("job");
  let shown = false;
  let detail = null;
  let stream = null; // {id, controller}
  let refreshing = null;

  const cell = (text, cls) => h("td", { class: cls || null }, text);
  const paramText = (v) => (v === null || v === undefined ? "default" : Array.isArray(v) ? v.join(",") : String(v));

  function setState(node, status) {
    node.dataset.state = STATES[status] || "";
    node.textContent = status;
  }

  // --- the jobs list -------------------------------------------------------------------------------------

  async function loadJobs() {
    const body = await LLM.get("/admin/tune/jobs");
    const rows = body.jobs.map((job) =>
      h(
        "tr",
        { dataset: { job: job.id }, class: job.id === chosen ? "selected" : null, onclick: () => choose(job.id) },
        cell(job.id, "mono"),
        cell(job.model),
        h("td", {}, h("span", { class: "state", dataset: { state: STATES[job.status] || "" }, text: job.status })),
        cell(job.config.strategy),
        cell(job.objective),
        cell(`${job.trials_done} / ${job.trials_planned}`, "num"),
        cell(fmt.num(job.baseline_value, 2), "num"),
        cell(fmt.num(job.best_value, 2), "num"),
        cell(LLM.known(job.improvement) ? `${job.improvement >= 0 ? "+" : ""}${fmt.num(job.improvement * 100, 1)} %` : LLM.DASH, "num"),
        cell(new Date(job.created_at * 1000).toLocaleString("en-GB")),
      ),
    );
    LLM.fillTable($("#tune-jobs"), rows, $("#tune-jobs-empty"));
    if (!shown) {
      shown = true;
      const first = chosen || (body.jobs[0] && body.jobs[0].id);
      if (first) await choose(first);
    }
  }

  async function choose(id) {
    chosen = id;
    for (const row of LLM.$$("#tune-jobs tbody tr")) row.classList.toggle("selected", row.dataset.job === id);
    const url = new URL(window.location.href);
    url.searchParams.set("job", id);
    window.history.replaceState(null, "", url);
    $("#tune-result").hidden = true;
    await refresh();
  }

  async function refresh() {
    if (!chosen) return;
    const id = chosen;
    try {
      const body = await LLM.get(`/admin/tune/jobs/${encodeURIComponent(id)}`);
      if (id !== chosen) return;
      detail = body;
      render(body);
      if (body.running) follow(id);
    } catch (error) {
      LLM.reportError(error);
    }
  }

  /* Trial events come in bursts: one refresh per burst. */
  function refreshSoon() {
    if (refreshing) return;
    refreshing = setTimeout(() => {
      refreshing = null;
      refresh();
      loadJobs().catch(LLM.reportError);
    }, 300);
  }

  // --- one job -------------------------------------------------------------------------------------------

  function render(job) {
    $("#tune-job-card").hidden = false;
    $("#tune-job-id").textContent = job.id;
    setState($("#tune-job-status"), job.status);
    const cfg = job.config;
    $("#tune-job-facts").textContent =
      `${job.model}: ${cfg.strategy}, ${job.objective} at ${cfg.concurrency} concurrent users, ${cfg.lengths}, ` +
      `${cfg.requests} requests per trial; ${job.trials_done} of ${job.trials_planned} trials done` +
      (job.error ? `; ${job.error}` : "");
    $("#tune-stop").hidden = !job.running;
    $("#tune-apply").hidden = job.running || Boolean(job.nothing_to_apply);
    if (!job.running) $("#tune-progress").hidden = true;
    renderObjective(job);
    const importance = Object.entries(job.importance || {}).sort((a, b) => b[1] - a[1]);
    XYCharts.bars($("#chart-tune-importance"), importance, { format: (v) => fmt.num(v, 2) });
    renderBest(job);
    renderTrials(job);
  }

  function renderObjective(job) {
    const maximize = job.direction === "maximize";
    const trials = job.trials.filter((t) => t.status !== "running");
    let best = null;
    const bestSoFar = trials.map((t) => {
      if (t.feasible && LLM.known(t.value) && (best === null || (maximize ? t.value > best : t.value < best))) best = t.value;
      return best;
    });
    $("#tune-objective-title").textContent = `${job.objective} over trials`;
    XYCharts.lines(
      $("#chart-tune-objective"),
      trials.map((t) => t.number),
      [
        { label: "measured", values: trials.map((t) => (t.status === "complete" ? t.value : null)), points: true },
        { label: "best so far", values: bestSoFar, step: true },
        { label: "baseline", values: trials.map(() => job.baseline_value), color: "#8b949e" },
      ],
      { xLabel: "trial", xFormat: (v) => (Number.isInteger(v) ? String(v) : ""), format: (v) => fmt.num(v, 1) },
    );
  }

  function renderBest(job) {
    const baseline = job.trials.find((t) => t.kind === "baseline");
    const best = job.trials.find((t) => t.number === job.best_trial);
    const rows = job.parameters.map((name) =>
      h(
        "tr",
        { dataset: { param: name } },
        cell(name),
        cell(baseline ? paramText(baseline.params[name]) : LLM.DASH, "mono"),
        cell(best ? paramText(best.params[name]) : LLM.DASH, "mono"),
      ),
    );
    rows.push(h("tr", { class: "total" }, cell(job.objective), cell(fmt.num(job.baseline_value, 2), "num"), cell(fmt.num(job.best_value, 2), "num")));
    LLM.fillTable($("#tune-best"), rows);
    const gain = LLM.known(job.improvement) ? `${job.improvement >= 0 ? "+" : ""}${fmt.num(job.improvement * 100, 1)} % over the baseline` : "";
    $("#tune-best-note").textContent = [best ? `best: trial #${best.number}` : "no feasible trial yet", gain, job.nothing_to_apply ? `nothing to apply: ${job.nothing_to_apply}` : ""]
      .filter(Boolean)
      .join("; ");
    $("#tune-snippet").textContent = job.snippet || LLM.DASH;
  }

  function renderTrials(job) {
    const names = job.parameters;
    const head = ["#", "Kind", ...names, "Status", job.objective, "TTFT p99", "TPOT p99", "Other CPU", "Note"];
    $("#tune-trials thead tr").replaceChildren(...head.map((text, i) => h("th", { class: i >= names.length + 3 && i < head.length - 1 ? "num" : null, text })));
    const rows = job.trials.map((t) => {
      const m = t.metrics;
      const status = t.status === "running" && !job.running ? "interrupted" : t.status;
      const note = t.reason || (t.status === "complete" && !t.feasible ? "infeasible (SLO or errors)" : "");
      return h(
        "tr",
        { dataset: { trial: String(t.number), status }, class: t.number === job.best_trial ? "best" : null },
        cell(String(t.number), "num"),
        cell(t.kind),
        ...names.map((name) => cell(paramText(t.params[name]), "mono")),
        cell(status),
        cell(fmt.num(t.value, 2), "num"),
        cell(fmt.ms(m && m.ttft_ms ? m.ttft_ms.p99 : null), "num"),
        cell(fmt.ms(m && m.tpot_ms ? m.tpot_ms.p99 : null), "num"),
        cell(LLM.known(t.engine.other_cpu) ? fmt.ratio(t.engine.other_cpu) : LLM.DASH, "num"),
        cell(note || LLM.DASH, note ? "bad" : "hint"),
      );
    });
    LLM.fillTable($("#tune-trials"), rows);
  }

  // --- live progress: the job's event stream (fetch, so that the admin key goes in a header) ----------------

  async function follow(id) {
    if (stream && stream.id === id) return;
    if (stream) stream.controller.abort();
    const controller = new AbortController();
    stream = { id, controller };
    const key = localStorage.getItem(KEY_STORAGE) || "";
    const headers = { accept: "text/event-stream" };
    if (key) headers.authorization = `Bearer ${key}`;
    try {
      const response = await fetch(`/admin/tune/jobs/${encodeURIComponent(id)}/events`, { headers, signal: controller.signal });
      if (!response.ok) throw new LLM.ApiError(response.status, `the job's event stream answered HTTP ${response.status}`);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") LLM.reportError(error);
    } finally {
      if (stream && stream.controller === controller) stream = null;
      if (chosen === id) refreshSoon();
    }
  }

  function onEvent(event) {
    if (event.job_id !== chosen) return;
    const progress = $("#tune-progress");
    progress.dataset.events = String(Number(progress.dataset.events || 0) + 1);
    const trial = event.trial;
    if (event.kind === "trial_started" && trial) {
      progress.hidden = false;
      progress.textContent = `Trial #${trial.number}: starting the engine (${describe(trial.params)})`;
    } else if (event.kind === "trial_progress" && trial && event.bench) {
      progress.hidden = false;
      const phase = event.bench.phase.replace(/_/g, " ");
      progress.textContent = `Trial #${trial.number}: ${phase}, ${event.bench.done} of ${event.bench.total} requests (${describe(trial.params)})`;
    } else if (event.kind === "trial_finished" || event.kind === "trial_skipped") {
      if (event.kind === "trial_skipped") progress.textContent = `Skipped ${describe(event.params)}: ${event.reason}`;
      refreshSoon();
    } else if (event.kind.startsWith("job_") && event.kind !== "job_started") {
      progress.hidden = true;
      refreshSoon();
    }
  }

  const describe = (params) => Object.entries(params || {}).map(([k, v]) => `${k}=${paramText(v)}`).join(" ") || "current profile";

  // --- actions -------------------------------------------------------------------------------------------

  async function act(button, path, done) {
    button.disabled = true;
    try {
      done(await LLM.post(`/admin/tune/jobs/${encodeURIComponent(chosen)}/${path}`));
    } catch (error) {
      showResult(error.message, false);
    } finally {
      button.disabled = false;
    }
  }

  function showResult(text, ok) {
    const box = $("#tune-result");
    box.textContent = text;
    box.className = ok ? "result ok" : "result error";
    box.hidden = false;
  }

  function applied(body) {
    const change = body.change;
    const params = describe(body.applied);
    showResult(
      `Applied to models[${body.model}] (trial #${body.trial}): ${params}. Configuration change ${change.id} (${change.result}` +
        `${change.restarted.length ? `, restarted ${change.restarted.join(", ")}` : ""}); undo it from the Config page's history ` +
        `or with POST /admin/config/rollback/${change.id}.`,
      change.result === "applied",
    );
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#tune-stop").addEventListener("click", (e) => act(e.target, "stop", () => refreshSoon()));
    $("#tune-apply").addEventListener("click", (e) => act(e.target, "apply", applied));
    loadJobs().catch(LLM.reportError);
  });
  window.addEventListener("pagehide", () => stream && stream.controller.abort());
})();
