// ZakPOS scan page: photo -> POST /api/v1/ocr/process/async -> live progress over the WebSocket -> result ->
// corrections. Plain browser JavaScript, no build step, no external files: it runs on a shop LAN with no internet.
"use strict";

(function () {
  const API = "/api/v1";
  const TOKEN_KEY = "zakpos.token";
  // Fields shown for each document type (others appear too when the node found them).
  const FIELDS_BY_TYPE = {
    product: ["product_name", "price", "currency", "barcode", "sku", "expiry_date", "quantity", "unit"],
    receipt: ["merchant", "address", "date", "total", "tax", "currency"],
    invoice: ["vendor", "invoice_number", "date", "due_date", "total", "tax", "currency"],
    barcode: ["barcode", "product_name", "price", "expiry_date"],
  };
  const NUMBER_FIELDS = new Set(["price", "quantity", "total", "tax"]);
  const LABELS = {
    product_name: "Product name", price: "Price", currency: "Currency", barcode: "Barcode", sku: "SKU",
    expiry_date: "Expiry date", quantity: "Quantity", unit: "Unit", merchant: "Merchant", address: "Address",
    date: "Date", total: "Total", tax: "Tax", invoice_number: "Invoice number", due_date: "Due date",
    vendor: "Vendor",
  };
  // Poll the job when the WebSocket is down (every this many ms), and give up waiting after this long.
  const POLL_MS = 1000;
  const GIVE_UP_MS = 120000;

  const $ = (id) => document.getElementById(id);
  // Events of jobs this page has not heard of yet (a fast job may finish before its 202 answer arrives).
  const EARLY_JOBS = 20;
  const state = {
    image: null, jobId: null, result: null, ws: null, wsReady: false, pollTimer: null, deadline: 0,
    early: new Map(),
  };

  // ---- token -------------------------------------------------------------------------------------------------
  function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

  function showTokenStatus(message, bad) {
    const el = $("token-status");
    el.textContent = message;
    el.classList.toggle("error", Boolean(bad));
  }

  function authProblem(status, error) {
    const why = error && error.message ? " (" + error.message + ")" : "";
    if (status === 401) {
      showTokenStatus("The token was refused: it is missing, mistyped or expired" + why + ". Paste a new one.", true);
    } else {
      showTokenStatus("This token may not do that: it belongs to another shop or lacks the role" + why + ".", true);
    }
    $("token-card").scrollIntoView({ block: "start" });
  }

  // ---- API calls: every answer is {success, data?, error?} ----------------------------------------------------
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers);
    let response;
    try {
      response = await fetch(API + path, opts);
    } catch (err) {
      throw { status: 0, error: { code: "NETWORK_ERROR", message: "the node cannot be reached" } };
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok || !body || body.success === false) {
      const error = (body && body.error) || { code: "HTTP_" + response.status, message: response.statusText };
      const quiet = opts.quiet403 && response.status === 403;
      if ((response.status === 401 || response.status === 403) && !quiet) authProblem(response.status, error);
      throw { status: response.status, error: error };
    }
    return body.data;
  }

  function describe(problem) {
    const e = problem && problem.error ? problem.error : { message: String(problem) };
    return (e.code ? e.code + ": " : "") + (e.message || "failed");
  }

  // ---- WebSocket: job events of this shop --------------------------------------------------------------------
  function setLive(on) {
    const pill = $("live");
    pill.textContent = on ? "live" : "offline";
    pill.classList.toggle("pill-on", on);
    pill.classList.toggle("pill-off", !on);
  }

  function connect() {
    if (!token() || state.ws) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + API + "/ocr/ws");
    state.ws = ws;
    // The token goes in the first message, not the URL, so it stays out of access logs.
    ws.onopen = () => ws.send(JSON.stringify({ token: token() }));
    ws.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (err) { return; }
      if (event.event === "connected") { state.wsReady = true; setLive(true); return; }
      if (event.event === "error") {
        const code = event.error && event.error.code;
        authProblem(code === "FORBIDDEN" ? 403 : 401, event.error);
        return;
      }
      if (!event.job_id) return;
      if (event.job_id === state.jobId) { onJobEvent(event); return; }
      const list = state.early.get(event.job_id) || [];
      list.push(event);
      state.early.set(event.job_id, list);
      if (state.early.size > EARLY_JOBS) state.early.delete(state.early.keys().next().value);
    };
    ws.onclose = (closed) => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsReady = false;
      setLive(false);
      if (closed.code !== 4401 && closed.code !== 4403 && token()) setTimeout(connect, 3000);
    };
  }

  // A new or forgotten token: drop the current socket (without its reconnect timer) and start over.
  function reconnect() {
    const old = state.ws;
    state.ws = null;
    state.wsReady = false;
    setLive(false);
    if (old) { old.onclose = null; old.close(); }
    connect();
  }

  function onJobEvent(event) {
    if (event.event === "job_queued") {
      showProgress(0, "queued (position " + (event.queue_position || 1) + ")");
    } else if (event.event === "job_started") {
      showProgress(event.progress || 0, "started");
    } else if (event.event === "job_progress") {
      showProgress(event.progress || 0, event.current_step || "working");
    } else if (event.event === "job_completed") {
      showProgress(100, "done");
      loadJob(state.jobId);
    } else if (event.event === "job_failed") {
      finishWithError(event.error);
    }
  }

  // ---- scanning ----------------------------------------------------------------------------------------------
  function pick(input) {
    const file = input.files && input.files[0];
    if (!file) return;
    state.image = file;
    $("file-name").textContent = file.name + " (" + Math.round(file.size / 1024) + " kB)";
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    $("send").disabled = false;
  }

  function showProgress(pct, step) {
    $("progress-box").hidden = false;
    $("progress-fill").style.width = Math.max(0, Math.min(100, pct)) + "%";
    $("progress").setAttribute("aria-valuenow", String(pct));
    $("progress-step").textContent = step;
    $("progress-pct").textContent = pct + "%";
  }

  async function send(event) {
    event.preventDefault();
    if (!state.image) return;
    if (!token()) { showTokenStatus("Paste your token first.", true); return; }
    connect();
    const form = new FormData();
    form.append("image", state.image, state.image.name || "photo.jpg");
    form.append("type", $("doc-type").value);
    form.append("language", $("language").value);
    $("send").disabled = true;
    $("result-card").hidden = true;
    $("scan-status").textContent = "Sending...";
    $("scan-status").classList.remove("error");
    showProgress(0, "uploading");
    try {
      const queued = await api("/ocr/process/async", { method: "POST", body: form });
      state.jobId = queued.job_id;
      $("scan-status").textContent = "Job " + queued.job_id.slice(0, 8) + " " + queued.status;
      state.deadline = Date.now() + GIVE_UP_MS;
      const early = state.early.get(queued.job_id) || [];
      state.early.delete(queued.job_id);
      early.forEach(onJobEvent);
      if (queued.status === "completed" || queued.status === "failed") loadJob(queued.job_id);
      else schedulePoll();
    } catch (problem) {
      finishWithError(problem.error);
    }
  }

  // A safety net for a dropped WebSocket or a missed event: look at the job now and then until it ends
  // (every second without a live socket, every five with one).
  function schedulePoll() {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(async () => {
      if (!state.jobId) return;
      if (Date.now() > state.deadline) { finishWithError({ message: "no answer from the node in time" }); return; }
      try {
        const job = await api("/ocr/jobs/" + state.jobId);
        if (job.status === "completed" || job.status === "failed" || job.status === "dead") showJob(job);
        else schedulePoll();
      } catch (problem) { schedulePoll(); }
    }, state.wsReady ? 5 * POLL_MS : POLL_MS);
  }

  async function loadJob(jobId) {
    try { showJob(await api("/ocr/jobs/" + jobId)); } catch (problem) { finishWithError(problem.error); }
  }

  function finishWithError(error) {
    clearTimeout(state.pollTimer);
    $("send").disabled = !state.image;
    const el = $("scan-status");
    el.textContent = "Could not read it: " + describe({ error: error || {} });
    el.classList.add("error");
    $("progress-step").textContent = "failed";
  }

  function showJob(job) {
    if (job.job_id !== state.jobId) return;
    clearTimeout(state.pollTimer);
    $("send").disabled = false;
    if (job.status !== "completed") { finishWithError(job.error); return; }
    showProgress(100, "done");
    $("scan-status").textContent = "Done.";
    state.result = job.result;
    renderResult(job.result, job.type);
  }

  // ---- result and corrections --------------------------------------------------------------------------------
  function renderResult(result, type) {
    $("result-card").hidden = false;
    $("result-meta").textContent = "Confidence " + Math.round((result.confidence || 0) * 100) + "% - " +
      (result.model_used || "?") + " - " + Math.round(result.processing_time_ms || 0) + " ms" +
      (result.cached ? " (from cache)" : "");
    $("text").textContent = result.text || "(no text found)";
    const list = $("barcodes");
    list.replaceChildren();
    for (const code of result.barcodes || []) {
      const item = document.createElement("li");
      item.textContent = code.type + ": " + code.value;
      list.appendChild(item);
    }
    if (!list.children.length) list.appendChild(Object.assign(document.createElement("li"), { textContent: "none" }));
    const structured = result.structured || {};
    const names = (FIELDS_BY_TYPE[type] || FIELDS_BY_TYPE.product).slice();
    for (const name of Object.keys(LABELS)) {
      if (!names.includes(name) && structured[name] !== null && structured[name] !== undefined) names.push(name);
    }
    const box = $("fields");
    box.replaceChildren();
    for (const name of names) box.appendChild(fieldRow(name, structured[name]));
    $("save-status").textContent = "";
    $("save-status").classList.remove("error");
    $("result-card").scrollIntoView({ block: "start" });
  }

  function fieldRow(name, value) {
    const label = document.createElement("label");
    label.className = "field";
    const caption = document.createElement("span");
    caption.className = "label";
    caption.textContent = LABELS[name] || name;
    const input = document.createElement("input");
    input.name = name;
    input.id = "field-" + name;
    input.dataset.field = name;
    if (NUMBER_FIELDS.has(name)) { input.type = "number"; input.step = "any"; input.inputMode = "decimal"; }
    else input.type = "text";
    if (name.endsWith("date")) input.placeholder = "YYYY-MM-DD";
    input.value = value === null || value === undefined ? "" : String(value);
    input.dataset.returned = input.value;
    input.addEventListener("input", () => label.classList.toggle("changed", input.value !== input.dataset.returned));
    label.append(caption, input);
    return label;
  }

  async function saveCorrections(event) {
    event.preventDefault();
    if (!state.jobId) return;
    const fields = {};
    for (const input of $("fields").querySelectorAll("input[data-field]")) {
      const raw = input.value.trim();
      if (raw === "" && input.dataset.returned === "") continue;  // nothing found, nothing typed: no label
      fields[input.dataset.field] = raw === "" ? null : NUMBER_FIELDS.has(input.dataset.field) ? Number(raw) : raw;
    }
    const status = $("save-status");
    status.classList.remove("error");
    if (!Object.keys(fields).length) { status.textContent = "Type the right values first."; return; }
    $("save").disabled = true;
    try {
      const saved = await api("/ocr/jobs/" + state.jobId + "/corrections", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ fields: fields }),
      });
      const right = saved.checks.filter((c) => c.correct).length;
      status.textContent = "Saved. The node had " + right + " of " + saved.checks.length + " fields right.";
      for (const input of $("fields").querySelectorAll("input[data-field]")) {
        input.dataset.returned = input.value;
        input.parentElement.classList.remove("changed");
      }
      refreshAccuracy();
    } catch (problem) {
      status.textContent = "Not saved: " + describe(problem);
      status.classList.add("error");
    } finally {
      $("save").disabled = false;
    }
  }

  async function refreshAccuracy() {
    if (!token()) return;
    try {
      // /metrics is for admins: a clerk's token gets 403 there, which is not a problem with the token.
      const metrics = await api("/metrics", { headers: { Accept: "application/json" }, quiet403: true });
      const acc = metrics.model_accuracy || {};
      const el = $("accuracy");
      if (acc.overall === null || acc.overall === undefined) { el.textContent = "No corrections yet."; return; }
      const parts = Object.entries(acc.by_field || {}).map(([k, v]) => (LABELS[k] || k) + " " + Math.round(v * 100) + "%");
      el.textContent = Math.round(acc.overall * 100) + "% of fields right over " + acc.corrections +
        " corrected scans" + (parts.length ? " (" + parts.join(", ") + ")" : "") + ".";
      el.dataset.overall = String(acc.overall);
    } catch (problem) {
      if (problem.status === 403) $("accuracy").textContent = "The node's accuracy is shown to admins.";
    }
  }

  // ---- start -------------------------------------------------------------------------------------------------
  function init() {
    $("token").value = token();
    showTokenStatus(token() ? "Token saved on this device." : "No token yet: paste one to start.", !token());
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (!value) { showTokenStatus("The token is empty.", true); return; }
      localStorage.setItem(TOKEN_KEY, value);
      showTokenStatus("Token saved on this device.", false);
      reconnect();
      refreshAccuracy();
    });
    $("token-clear").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      $("token").value = "";
      reconnect();
      showTokenStatus("Token forgotten.", true);
    });
    $("camera").addEventListener("change", (e) => pick(e.target));
    $("file").addEventListener("change", (e) => pick(e.target));
    $("scan-form").addEventListener("submit", send);
    $("fields-form").addEventListener("submit", saveCorrections);
    connect();
    refreshAccuracy();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
