"use strict";
/* APIs: per dialect (stored requests over a window), per endpoint (HTTP metrics since start), the request log
   with filters, request durations over time and live requests per second. */
(() => {
  const { fmt, h, $ } = LLM;
  const REFRESH_MS = 3000;
  const filters = $("#log-filters");
  const latency = new LLM.TimeChart($("#chart-latency"), { window: 3600, points: true, format: (v) => fmt.num(v, 0) });
  const rps = new LLM.TimeChart($("#chart-rps"), { format: (v) => fmt.num(v, 2) });
  const pick = (p, key) => (p ? p[key] : null);
  const triple = (p, format) => (p ? [p.p50, p.p90, p.p99].map(format).join(" / ") : LLM.DASH);
  const errorRate = (a) => (a.requests ? ((a.by_state && a.by_state.error) || 0) / a.requests : null);

  function dialectRow(a) {
    return h(
      "tr",
      { dataset: { dialect: a.key } },
      h("td", {}, a.key),
      h("td", { class: "num" }, fmt.int(a.requests)),
      h("td", { class: "num" }, fmt.pct(LLM.known(errorRate(a)) ? errorRate(a) * 100 : null, 1)),
      h("td", { class: "num" }, triple(a.ttft_ms, fmt.ms)),
      h("td", { class: "num" }, triple(a.duration_ms, fmt.ms)),
      h("td", { class: "num" }, fmt.num(pick(a.tokens_per_second, "p50"), 1)),
      h("td", { class: "num" }, `${fmt.int(a.prompt_tokens)} / ${fmt.int(a.completion_tokens)}`),
    );
  }

  function requestRow(r) {
    return h(
      "tr",
      { dataset: { request: r.id, dialect: r.dialect, state: r.state } },
      h("td", { class: "num" }, fmt.time(r.started_at)),
      h("td", { class: "mono" }, r.id),
      h("td", {}, r.dialect),
      h("td", {}, fmt.text(r.model)),
      h("td", {}, LLM.badge(r.state)),
      h("td", { class: "num" }, fmt.text(r.status)),
      h("td", { class: "num" }, `${fmt.int(r.prompt_tokens)} / ${fmt.int(r.completion_tokens)}`),
      h("td", { class: "num" }, fmt.ms(r.ttft_ms)),
      h("td", { class: "num" }, fmt.num(r.tokens_per_second, 1)),
      h("td", { class: "num" }, fmt.ms(r.duration_ms)),
      h("td", { class: "err" }, r.error || ""),
    );
  }

  function endpointRow(e) {
    const codes = Object.entries(e.by_code).map(([code, n]) => `${code}×${n}`).join(" ");
    return h(
      "tr",
      { dataset: { route: e.route, dialect: e.dialect } },
      h("td", {}, e.dialect),
      h("td", { class: "mono" }, e.route),
      h("td", {}, e.methods.join(", ")),
      h("td", { class: "num" }, fmt.int(e.requests)),
      h("td", { class: "num" }, fmt.pct(LLM.known(e.error_rate) ? e.error_rate * 100 : null, 1)),
      h("td", { class: "mono" }, codes),
      h("td", { class: "num" }, triple(e.latency_s, fmt.seconds)),
    );
  }

  function query() {
    const data = new FormData(filters);
    const params = new URLSearchParams({ window: $("#window").value });
    for (const key of ["model", "dialect", "state", "status", "limit"]) {
      const value = String(data.get(key) || "").trim();
      if (value) params.set(key, value);
    }
    return params;
  }

  async function loadRequests() {
    const params = query();
    const body = await LLM.get(`/api/metrics/apis?${params}`);
    LLM.fillTable($("#dialect-table"), body.dialects.map(dialectRow), $("#dialect-empty"));
    LLM.fillTable($("#request-log"), body.requests.map(requestRow), $("#log-empty"));
    latency.window = Number(params.get("window"));
    latency.clear();
    for (const r of body.requests) latency.push(r.dialect, r.started_at, r.duration_ms);
    latency.render();
  }

  async function loadEndpoints() {
    const body = await LLM.get("/ui/api/endpoints");
    const internal = $("#show-internal").checked;
    const rows = body.endpoints.filter((e) => internal || e.dialect !== "llmhost");
    LLM.fillTable($("#endpoint-table"), rows.map(endpointRow), $("#endpoint-empty"));
  }

  const refresh = () => Promise.all([loadRequests(), loadEndpoints()]).catch(LLM.reportError);

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  filters.addEventListener("change", refresh);
  $("#window").addEventListener("change", refresh);
  $("#show-internal").addEventListener("change", () => loadEndpoints().catch(LLM.reportError));
  setInterval(() => {
    if (filters.elements.follow.checked) refresh();
  }, REFRESH_MS);
  refresh();

  LLM.live((snapshot) => {
    rps.push("requests/s", snapshot.time, snapshot.requests_per_second);
    rps.render(snapshot.time);
  });
})();
