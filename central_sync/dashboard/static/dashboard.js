// ZakPOS OCR central dashboard. Plain browser JavaScript, no library, no external file: every view reads its
// JSON endpoint under /api/v1/dashboard/ and charts are drawn as inline SVG.
"use strict";

(function () {
  const API = "/api/v1/dashboard";
  const TOKEN_KEY = "zakpos.dashboard.token";
  const REFRESH_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  // Series colours, one per shop (cycled).
  const COLOURS = ["#0b6e4f", "#2f5fb3", "#c2571a", "#8a3ea8", "#b8860b", "#1f8a9e", "#a33b3b"];

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let knownShops = [];

  function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

  function setStatus(text, bad) {
    $("status").textContent = text;
    $("status").classList.toggle("bad", Boolean(bad));
  }

  function params() {
    const q = new URLSearchParams();
    const shop = $("shop").value;
    if (shop) q.set("shop_id", shop);
    const range = $("range").value;
    if (range === "custom") {
      if ($("from").value) q.set("from", $("from").value + "Z");
      if ($("to").value) q.set("to", $("to").value + "Z");
      if (!$("from").value) q.set("hours", "24");
    } else {
      q.set("hours", range);
    }
    return q.toString();
  }

  async function get(view) {
    const response = await fetch(API + "/" + view + "?" + params(), { headers: { Authorization: "Bearer " + token() } });
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok || !body || !body.success) {
      const error = (body && body.error) || { code: "HTTP_" + response.status, message: response.statusText };
      throw { status: response.status, error: error };
    }
    return body.data;
  }

  // ---- small DOM helpers -------------------------------------------------------------------------------------
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "-" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (parent) parent.appendChild(el);
    return el;
  }

  function pct(value) { return value === null || value === undefined ? "-" : Math.round(value * 1000) / 10 + "%"; }

  function ago(iso) {
    if (!iso) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function colourOf(shop) {
    const i = knownShops.indexOf(shop);
    return COLOURS[(i < 0 ? 0 : i) % COLOURS.length];
  }

  // ---- views -------------------------------------------------------------------------------------------------
  function renderKpis(s) {
    const items = [
      ["Jobs", s.jobs], ["Success rate", pct(s.success_rate)], ["p50", s.p50_ms === null ? "-" : s.p50_ms + " ms"],
      ["p95", s.p95_ms === null ? "-" : s.p95_ms + " ms"], ["Nodes online", s.nodes_online],
      ["Nodes offline", s.nodes_offline],
    ];
    const box = $("kpis");
    box.replaceChildren();
    for (const [label, value] of items) {
      const div = document.createElement("div");
      div.className = "kpi";
      const v = document.createElement("strong");
      v.textContent = String(value);
      const l = document.createElement("span");
      l.textContent = label;
      div.append(v, l);
      box.appendChild(div);
    }
  }

  function renderNodes(nodes) {
    const body = $("nodes").tBodies[0];
    body.replaceChildren();
    for (const n of nodes) {
      const row = body.insertRow();
      row.dataset.node = n.node_id;
      row.dataset.status = n.status;
      cell(row, n.node_id);
      cell(row, n.shop_id);
      const status = cell(row, n.status);
      status.className = "pill " + (n.status === "online" ? "on" : "off");
      cell(row, ago(n.last_seen)).title = n.last_seen || "";
      cell(row, n.model_version);
      cell(row, n.backlog, "num");
      cell(row, n.jobs, "num");
      cell(row, n.failed, "num");
    }
    if (!nodes.length) cell(body.insertRow(), "No nodes have reported yet.").colSpan = 8;
  }

  function renderShops(shops) {
    const body = $("shops").tBodies[0];
    body.replaceChildren();
    for (const s of shops) {
      const row = body.insertRow();
      row.dataset.shop = s.shop_id;
      cell(row, s.shop_id);
      cell(row, s.nodes_online + " / " + s.nodes, "num");
      cell(row, s.jobs, "num");
      cell(row, pct(s.success_rate), "num");
      cell(row, s.p50_ms, "num");
      cell(row, s.p95_ms, "num");
    }
    if (!shops.length) cell(body.insertRow(), "No data in this range.").colSpan = 6;
  }

  // Jobs per bucket: one line per shop over the time axis.
  function renderSeries(data) {
    $("bucket").textContent = data.bucket;
    const box = $("series");
    box.replaceChildren();
    const W = 760, H = 220, L = 40, B = 28, T = 10, R = 10;
    const start = Date.parse(data.range.from), end = Date.parse(data.range.to);
    const byShop = new Map();
    for (const p of data.series) {
      if (!byShop.has(p.shop_id)) byShop.set(p.shop_id, []);
      byShop.get(p.shop_id).push(p);
    }
    const max = Math.max(1, ...data.series.map((p) => p.jobs));
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "Jobs per " + data.bucket });
    const x = (t) => L + (W - L - R) * Math.min(1, Math.max(0, (t - start) / Math.max(1, end - start)));
    const y = (v) => H - B - (H - B - T) * (v / max);
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }, chart);
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }, chart);
    svg("text", { x: L - 6, y: T + 8, class: "tick", "text-anchor": "end" }, chart).textContent = String(max);
    svg("text", { x: L - 6, y: H - B, class: "tick", "text-anchor": "end" }, chart).textContent = "0";
    svg("text", { x: L, y: H - 8, class: "tick" }, chart).textContent = new Date(start).toISOString().slice(5, 16).replace("T", " ");
    svg("text", { x: W - R, y: H - 8, class: "tick", "text-anchor": "end" }, chart).textContent =
      new Date(end).toISOString().slice(5, 16).replace("T", " ");
    // Every bucket of the range, so that a quiet hour draws as zero instead of a line across it.
    const step = data.bucket === "hour" ? 3600e3 : 86400e3;
    const buckets = [];
    for (let t = Math.floor(start / step) * step; t < end; t += step) buckets.push(t);
    for (const [shop, points] of byShop) {
      const colour = colourOf(shop);
      const counts = new Map(points.map((p) => [Date.parse(p.at), p.jobs]));
      const path = buckets.map((t, i) => (i ? "L" : "M") + x(t).toFixed(1) + " " + y(counts.get(t) || 0).toFixed(1));
      svg("path", { d: path.join(" "), fill: "none", stroke: colour, "stroke-width": 2, class: "series" }, chart);
      for (const p of points) {
        const dot = svg("circle", { cx: x(Date.parse(p.at)), cy: y(p.jobs), r: 3.5, fill: colour, "data-shop": shop }, chart);
        svg("title", {}, dot).textContent = shop + " " + p.at + ": " + p.jobs + " jobs (" + p.failed + " failed)";
      }
    }
    box.appendChild(chart);
    const legend = document.createElement("p");
    legend.className = "legend";
    for (const shop of byShop.keys()) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.className = "swatch c" + (Math.max(0, knownShops.indexOf(shop)) % COLOURS.length);
      item.append(swatch, document.createTextNode(shop));
      legend.appendChild(item);
    }
    if (!byShop.size) legend.textContent = "No jobs in this range.";
    box.appendChild(legend);
  }

  // Horizontal bars: [{label, value, text}] with value in 0..max.
  function bars(box, items, max, empty) {
    box.replaceChildren();
    if (!items.length) { box.textContent = empty; return; }
    const row = 26, W = 360, L = 130;
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + (items.length * row + 4), role: "img" });
    items.forEach((item, i) => {
      const top = i * row + 2;
      svg("text", { x: L - 6, y: top + 16, class: "tick", "text-anchor": "end" }, chart).textContent = item.label;
      const width = Math.max(1, (W - L - 60) * (item.value / Math.max(max, 1e-9)));
      const bar = svg("rect", { x: L, y: top + 4, width: width, height: row - 10, rx: 3, class: "hbar", "data-label": item.label }, chart);
      svg("title", {}, bar).textContent = item.label + ": " + item.text;
      svg("text", { x: L + width + 6, y: top + 16, class: "tick" }, chart).textContent = item.text;
    });
    box.appendChild(chart);
  }

  function renderErrors(errors) {
    const byCode = new Map();
    for (const e of errors) byCode.set(e.code, (byCode.get(e.code) || 0) + e.count);
    const items = [...byCode.entries()].map(([code, n]) => ({ label: code, value: n, text: String(n) }));
    bars($("errors"), items, Math.max(0, ...items.map((i) => i.value)), "No failed jobs in this range.");
  }

  function renderAccuracy(acc) {
    $("accuracy-overall").textContent = acc.overall === null ? "No corrections in this range." :
      "Overall " + pct(acc.overall) + " of corrected fields right, over " + acc.corrections + " corrected jobs.";
    $("accuracy-overall").dataset.overall = acc.overall === null ? "" : String(acc.overall);
    const items = Object.entries(acc.by_field).map(([field, v]) =>
      ({ label: field, value: v.accuracy, text: pct(v.accuracy) + " (" + v.checked + ")" }));
    bars($("accuracy"), items, 1, "");
  }

  function renderRollouts(data) {
    $("rollouts").textContent = data.summary;
    const list = $("rollout-list");
    list.replaceChildren();
    for (const r of data.active) {
      const li = document.createElement("li");
      li.dataset.rollout = String(r.rollout_id);
      const parts = [r.label + " \u2192 " + r.target_text, r.shadow ? "shadow, " + pct(r.shadow_sample) + " sample" : "serving",
        r.nodes_reporting + (r.nodes_reporting === 1 ? " node runs it" : " nodes run it")];
      const agreement = r.shadow_agreement;
      if (agreement && agreement.value !== null) {
        parts.push("agreement " + pct(agreement.value) + " over " + agreement.nodes + (agreement.nodes === 1 ? " node" : " nodes"));
      }
      li.textContent = parts.join(" \u00b7 ");
      li.title = "rollout " + r.rollout_id + ", since " + r.created_at;
      list.appendChild(li);
    }
  }

  function fillShops(shops, me) {
    const select = $("shop");
    const current = select.value;
    const names = me.all_shops ? shops.map((s) => s.shop_id) : [me.shop_id];
    for (const name of names) if (!knownShops.includes(name)) knownShops.push(name);
    if (select.options.length - 1 === names.length && names.every((n, i) => select.options[i + 1].value === n)) return;
    select.replaceChildren();
    if (me.all_shops) select.appendChild(new Option("All shops", ""));
    for (const name of names) select.appendChild(new Option(name, name));
    select.value = names.includes(current) || (current === "" && me.all_shops) ? current : select.options[0].value;
  }

  async function refresh() {
    clearTimeout(timer);
    if (!token()) { setStatus("Paste a dashboard token to start.", true); return; }
    try {
      const me = await get("me");
      $("who").textContent = me.user_id + (me.all_shops ? " (operator, all shops)" : " (shop " + me.shop_id + ")");
      const [summary, shops, nodes, series, errors, accuracy, rollouts] = await Promise.all(
        ["summary", "shops", "nodes", "jobs_per_hour", "errors", "accuracy", "rollouts"].map(get));
      fillShops(shops.shops, me);
      renderKpis(summary.summary);
      renderShops(shops.shops);
      renderNodes(nodes.nodes);
      renderSeries(series);
      renderErrors(errors.errors);
      renderAccuracy(accuracy.accuracy);
      renderRollouts(rollouts.rollouts);
      setStatus("Updated " + new Date().toLocaleTimeString() + ".", false);
      document.body.dataset.loaded = String(Date.now());
    } catch (problem) {
      const e = problem && problem.error ? problem.error : { message: String(problem) };
      const hint = problem.status === 401 ? " Paste a valid, unexpired token." :
        problem.status === 403 ? " This token may not see that." : "";
      setStatus((e.code ? e.code + ": " : "") + (e.message || "failed") + "." + hint, true);
    }
    if ($("auto").checked) timer = setTimeout(refresh, REFRESH_MS);
  }

  function init() {
    $("token").value = token();
    $("controls").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
      refresh();
    });
    $("range").addEventListener("change", () => {
      for (const el of document.querySelectorAll(".custom")) el.hidden = $("range").value !== "custom";
      if ($("range").value !== "custom") refresh();
    });
    $("shop").addEventListener("change", refresh);
    $("auto").addEventListener("change", refresh);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
