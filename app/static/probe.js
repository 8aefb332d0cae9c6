// wsgi-lab browser probe: fire N fetch() calls at /sleep at once, then draw what the browser and the
// server each did with them. Plain JS + SVG, no dependencies. Results are also left in
// window.probeResult so that tests (and curious people, from the console) can read the numbers.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  // Distinct, colour-blind-friendlier hues (Okabe-Ito plus a few), one per worker (pid/thread).
  const LANE_COLOURS = [
    "#0072b2", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#7b5ea7",
    "#e69f00", "#3d8c40", "#b23a48", "#2f4b7c", "#8c6d31", "#5f9ea0",
  ];
  // Server intervals may stick out of the browser's by this much before the page calls the clocks
  // inconsistent (timer coarsening in the browser is 0.1 ms, the server's header has 1 µs).
  const CLOCK_SLACK_MS = 5;

  const form = document.getElementById("probe-form");
  const statusLine = document.getElementById("status");
  const runButton = document.getElementById("run");
  const maxN = Number(form.elements.n.max);
  const maxSeconds = Number(form.elements.s.max);

  window.probeResult = { status: "idle" };

  /** Wall-clock milliseconds since the epoch at sub-millisecond resolution (the server's clock unit is s). */
  const now = () => performance.timeOrigin + performance.now();

  function readConfig() {
    const n = Math.round(Number(form.elements.n.value));
    const seconds = Number(form.elements.s.value);
    if (!(n >= 1 && n <= maxN)) throw new Error(`N must be between 1 and ${maxN}`);
    if (!(seconds >= 0 && seconds <= maxSeconds)) throw new Error(`seconds must be between 0 and ${maxSeconds}`);
    return { n, seconds, urls: form.elements.urls.value, cache: form.elements.cache.value };
  }

  /** Prefill the form from ?n=&s=&urls=&cache= so that a run can be linked to (and driven by tests). */
  function applyQuery() {
    const q = new URLSearchParams(location.search);
    if (q.has("n")) form.elements.n.value = q.get("n");
    if (q.has("s")) form.elements.s.value = q.get("s");
    if (["unique", "same"].includes(q.get("urls"))) form.elements.urls.value = q.get("urls");
    if (["default", "no-store"].includes(q.get("cache"))) form.elements.cache.value = q.get("cache");
    return q.get("autorun") === "1";
  }

  function requestUrl(config, tag, i) {
    // The run tag keeps one run's URLs apart from the previous run's (and from its timing entries).
    const base = `/sleep?s=${config.seconds}&run=${tag}`;
    return new URL(config.urls === "same" ? base : `${base}&i=${i}`, location.href).href;
  }

  async function fireOne(i, url, cache) {
    const sent = now();
    try {
      const response = await fetch(url, { cache });
      const headers = response.headers;
      await response.text();
      const received = now();
      // Same-origin: the X-* headers are readable without Access-Control-Expose-Headers.
      const seconds = (name) => {
        const value = headers.get(name);
        return value === null ? null : Number(value) * 1000;
      };
      return {
        i, url, sent, received,
        status: response.status,
        model: headers.get("X-Server-Model"),
        pid: headers.get("X-Worker-Pid"),
        thread: headers.get("X-Worker-Thread"),
        serverStart: seconds("X-Request-Start"),
        serverEnd: seconds("X-Request-End"),
        cpuMs: headers.get("X-Request-Cpu-Ms") === null ? null : Number(headers.get("X-Request-Cpu-Ms")),
        laneKind: headers.get("X-Worker-Lane-Kind"),
        laneId: headers.get("X-Worker-Lane-Id"),
        error: response.ok ? null : `HTTP ${response.status}`,
      };
    } catch (err) {
      return { i, url, sent, received: now(), status: null, error: String(err) };
    }
  }

  /**
   * Pair each fetch with its Resource Timing entry, which says when the browser actually put the
   * request on a connection (requestStart). Unique URLs pair by name. Identical URLs have identical
   * entry names, so within one URL the n-th response to finish on the wire (responseEnd) is paired
   * with the n-th fetch() to resolve: the browser hands a response to the page only after it has
   * arrived, so this order-preserving pairing keeps every pair causal (sent, on the wire, received).
   */
  function attachTimings(requests, tag) {
    const origin = performance.timeOrigin;
    const entries = performance
      .getEntriesByType("resource")
      .filter((e) => e.initiatorType === "fetch" && e.name.includes(`run=${tag}`));
    const byUrl = new Map();
    for (const r of requests) {
      if (!byUrl.has(r.url)) byUrl.set(r.url, []);
      byUrl.get(r.url).push(r);
    }
    for (const [url, group] of byUrl) {
      const mine = entries.filter((e) => e.name === url).sort((a, b) => a.responseEnd - b.responseEnd);
      const ordered = [...group].sort((a, b) => a.received - b.received);
      ordered.forEach((r, k) => {
        const e = mine[k];
        if (!e) return;
        r.wireStart = e.requestStart > 0 ? origin + e.requestStart : null;
        r.wireEnd = e.responseEnd > 0 ? origin + e.responseEnd : null;
        r.protocol = e.nextHopProtocol || null;
      });
    }
    return entries.length;
  }

  /** Most intervals open at one instant; an interval ending exactly when another starts does not overlap. */
  function maxOverlap(intervals) {
    const events = [];
    for (const [a, b] of intervals) events.push([a, 1], [b, -1]);
    events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let current = 0;
    let most = 0;
    for (const [, delta] of events) {
      current += delta;
      most = Math.max(most, current);
    }
    return most;
  }

  const laneOf = (r) => (r.pid === null || r.pid === undefined ? "no answer" : `${r.pid} · ${r.thread}`);
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;

  function analyse(config, requests, tag, entryCount) {
    const ok = requests.filter((r) => !r.error && r.serverStart !== null && r.serverEnd !== null);
    const onWire = requests.filter((r) => r.wireStart != null && r.wireEnd != null);
    const t0 = Math.min(...requests.map((r) => r.sent));
    const t1 = Math.max(...requests.map((r) => r.received));
    const lanes = [];
    for (const r of [...ok].sort((a, b) => a.serverStart - b.serverStart)) {
      if (!lanes.includes(laneOf(r))) lanes.push(laneOf(r));
    }
    // Clock check: the app's interval must sit inside the browser's own send/receive interval.
    let clockOffsetMs = 0;
    for (const r of ok) {
      clockOffsetMs = Math.max(clockOffsetMs, r.sent - r.serverStart, r.serverEnd - r.received);
    }
    const result = {
      status: "done",
      config,
      runTag: tag,
      userAgent: navigator.userAgent,
      n: requests.length,
      okCount: ok.length,
      errors: requests.filter((r) => r.error).map((r) => ({ i: r.i, error: r.error })),
      elapsedMs: t1 - t0,
      serverMaxInFlight: maxOverlap(ok.map((r) => [r.serverStart, r.serverEnd])),
      browserMaxOnWire: onWire.length ? maxOverlap(onWire.map((r) => [r.wireStart, r.wireEnd])) : null,
      browserTimedCount: onWire.length,
      resourceTimingEntries: entryCount,
      browserMaxWaitMs: onWire.length ? Math.max(...onWire.map((r) => r.wireStart - r.sent)) : null,
      lanes,
      models: [...new Set(ok.map((r) => r.model))],
      protocols: [...new Set(onWire.map((r) => r.protocol).filter(Boolean))],
      clockOffsetMs,
      clocksConsistent: clockOffsetMs <= CLOCK_SLACK_MS,
      requests: requests.map((r) => ({ ...r, lane: r.error && r.pid == null ? null : laneOf(r) })),
    };
    result.verdict = verdict(result);
    return result;
  }

  /** One plain-language reading of the measured numbers; every figure in it comes from this run. */
  function verdict(res) {
    const { n, seconds, urls, cache } = res.config;
    const b = res.browserMaxOnWire;
    const s = res.serverMaxInFlight;
    const parts = [];
    if (res.errors.length) parts.push(`${res.errors.length} of ${n} requests failed (${res.errors[0].error}).`);
    if (b === null) {
      parts.push("The browser gave no Resource Timing for these requests, so its side cannot be shown.");
    } else if (n > 1 && b === 1 && urls === "same" && cache === "default") {
      res.serialisedByBrowser = true;
      parts.push(
        `Serialised by the browser: it never had more than one of these ${n} identical requests on the ` +
          `wire; each waited inside the browser for the previous one to finish (Chromium's HTTP cache ` +
          `lock), so the run took ${fmt(res.elapsedMs)} for ${n} × ${seconds} s. Compare with ` +
          `"unique" URLs or fetch cache mode "no-store".`,
      );
    } else if (b < n) {
      parts.push(
        `The browser capped this run at ${b} request${b === 1 ? "" : "s"} on the wire at once; the other ` +
          `${n - b} waited inside the browser (up to ${fmt(res.browserMaxWaitMs)}) for a free connection.`,
      );
    } else {
      parts.push(`The browser had all ${n} requests on the wire at once.`);
    }
    if (b !== null && res.okCount) {
      if (s < b) {
        parts.push(
          `The server ran at most ${s} at once although the browser had ${b} on the wire: on this run the ` +
            `server (${res.models.join(", ")}) was the narrower limit.`,
        );
      } else {
        parts.push(
          `The server ran at most ${s} at once, as many as reached it: these numbers show the browser's ` +
            `limit, not the server's.`,
        );
      }
    }
    return parts.join(" ");
  }

  function svg(name, attrs, parent, text) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }

  function tickStep(spanS) {
    for (const step of [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60]) {
      if (spanS / step <= 12) return step;
    }
    return 120;
  }

  const shorten = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

  function draw(res) {
    const chart = document.getElementById("chart");
    chart.replaceChildren();
    const rowH = 22;
    const labelW = 250;
    const width = 980;
    const top = 78;
    const right = 20;
    const plotW = width - labelW - right;
    const laneIndex = new Map(res.lanes.map((lane, k) => [lane, k]));
    // Rows grouped by worker, in the order the workers first started something, then by start time.
    const rows = [...res.requests].sort((a, b) => {
      const la = laneIndex.has(a.lane) ? laneIndex.get(a.lane) : Infinity;
      const lb = laneIndex.has(b.lane) ? laneIndex.get(b.lane) : Infinity;
      return la - lb || (a.serverStart ?? a.sent) - (b.serverStart ?? b.sent) || a.i - b.i;
    });
    const height = top + rows.length * rowH + 28;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("width", width);
    chart.setAttribute("height", height);

    const t0 = Math.min(...res.requests.map((r) => r.sent));
    const span = Math.max(res.elapsedMs, 1);
    const x = (t) => labelW + Math.max(0, Math.min(1, (t - t0) / span)) * plotW;
    const colour = (lane) => (laneIndex.has(lane) ? LANE_COLOURS[laneIndex.get(lane) % LANE_COLOURS.length] : "#c0392b");

    const { n, seconds, urls, cache } = res.config;
    svg("text", { x: 0, y: 16, class: "title" }, chart,
      `${n} × /sleep?s=${seconds} · ${urls === "same" ? "same URL" : "unique URLs"} · cache ${cache} · ` +
        `server ${res.models.join(", ") || "?"} · ${res.protocols.join(", ") || "?"}`);
    svg("text", { x: 0, y: 34, class: "subtitle" }, chart,
      `browser: max ${res.browserMaxOnWire ?? "?"} on the wire · server: max ${res.serverMaxInFlight} running · ` +
        `${res.lanes.length} worker${res.lanes.length === 1 ? "" : "s"} · took ${fmt(res.elapsedMs)}`);

    // Legend.
    const legend = [
      ["queued", "waiting in the browser"], ["wire", "on the wire, not started by the app"],
      ["run", "running in the app (colour = worker)"], ["back", "response back"],
    ];
    let lx = 0;
    for (const [cls, label] of legend) {
      if (cls === "run") {
        // One swatch per colour would not fit; two halves say "the colour varies".
        svg("rect", { x: lx, y: 44, width: 7, height: 10, fill: LANE_COLOURS[0] }, chart);
        svg("rect", { x: lx + 7, y: 44, width: 7, height: 10, fill: LANE_COLOURS[1] }, chart);
      } else {
        svg("rect", { x: lx, y: 44, width: 14, height: 10, class: `seg ${cls}` }, chart);
      }
      const t = svg("text", { x: lx + 18, y: 53, class: "legend" }, chart, label);
      lx += 26 + t.getComputedTextLength();
    }

    // Time axis.
    const step = tickStep(span / 1000);
    for (let s = 0; s <= span / 1000 + 1e-9; s += step) {
      const tx = labelW + (s * 1000 / span) * plotW;
      svg("line", { x1: tx, x2: tx, y1: top - 6, y2: top + rows.length * rowH, class: "grid" }, chart);
      svg("text", { x: s ? tx : tx + 2, y: top - 9, class: s ? "tick" : "tick start" }, chart, `${Number(s.toFixed(2))} s`);
    }
    svg("text", { x: 0, y: top - 9, class: "axis-label start" }, chart, "worker (pid · thread)");
    svg("text", { x: labelW - 8, y: top - 9, class: "axis-label" }, chart, "request");

    let previousLane;
    rows.forEach((r, k) => {
      const y = top + k * rowH;
      if (r.lane !== previousLane) {
        if (k) svg("line", { x1: 0, x2: width - right, y1: y, y2: y, class: "lane-sep" }, chart);
        const label = svg("text", { x: 0, y: y + 15, class: "lane", fill: colour(r.lane) }, chart,
          shorten(r.lane ?? "failed", 27));
        svg("title", {}, label, r.lane ?? "failed");
        previousLane = r.lane;
      }
      svg("text", { x: labelW - 8, y: y + 15, class: "req" }, chart, `#${r.i}`);
      const bar = svg("g", { class: "bar", "data-i": r.i }, chart);
      const seg = (a, b, cls, extra = {}) => {
        if (a == null || b == null || b < a) return;
        svg("rect", { x: x(a), y: y + 4, width: Math.max(x(b) - x(a), 1), height: rowH - 8, class: `seg ${cls}`, ...extra }, bar);
      };
      if (r.error && r.serverStart == null) {
        seg(r.sent, r.received, "failed");
      } else {
        const wire = r.wireStart ?? r.serverStart;
        seg(r.sent, Math.min(wire, r.serverStart), "queued");
        seg(wire, r.serverStart, "wire");
        seg(r.serverStart, r.serverEnd, "run", { fill: colour(r.lane) });
        seg(r.serverEnd, r.received, "back");
      }
      svg("title", {}, bar, describe(r, t0));
    });
    svg("text", { x: labelW, y: top + rows.length * rowH + 20, class: "tick start" }, chart,
      "time since the first fetch() call (browser clock; server bars from X-Request-Start/End)");
  }

  function describe(r, t0) {
    const rel = (t) => (t == null ? "?" : `${((t - t0) / 1000).toFixed(3)} s`);
    return [
      `#${r.i} ${r.url}`,
      `sent ${rel(r.sent)}, on the wire ${rel(r.wireStart)}, server ${rel(r.serverStart)}–${rel(r.serverEnd)}, ` +
        `received ${rel(r.received)}`,
      `worker ${r.lane ?? "?"}${r.error ? `, error: ${r.error}` : ""}`,
    ].join("\n");
  }

  function showSummary(res) {
    const rows = [
      ["server model", res.models.join(", ") || "?"],
      ["requests", `${res.n} sent, ${res.okCount} answered${res.errors.length ? `, ${res.errors.length} failed` : ""}`],
      ["server: max running at once", `${res.serverMaxInFlight} (overlapping X-Request-Start…End)`],
      ["browser: max on the wire at once", `${res.browserMaxOnWire ?? "unknown"} (Resource Timing requestStart…responseEnd)`],
      ["longest wait inside the browser", res.browserMaxWaitMs == null ? "unknown" : fmt(res.browserMaxWaitMs)],
      ["workers seen", `${res.lanes.length}`],
      ["protocol", res.protocols.join(", ") || "unknown"],
      ["whole run", `${fmt(res.elapsedMs)} for ${res.n} × ${res.config.seconds} s`],
    ];
    const dl = document.getElementById("summary");
    dl.replaceChildren();
    for (const [k, v] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    document.getElementById("verdict").textContent = res.verdict;
    document.getElementById("clock-note").textContent = res.clocksConsistent
      ? `Clock check: every server interval fits inside its browser interval (within ${CLOCK_SLACK_MS} ms), ` +
        "as expected with browser and server on one machine."
      : `Clock check: server intervals stick out of the browser's by up to ${res.clockOffsetMs.toFixed(1)} ms; ` +
        "the browser and the server clocks differ (another machine?), so the bars are shifted by that much.";
    document.getElementById("results").hidden = false;
  }

  async function run() {
    let config;
    try {
      config = readConfig();
    } catch (err) {
      statusLine.textContent = err.message;
      window.probeResult = { status: "error", error: err.message };
      return;
    }
    const tag = Math.random().toString(36).slice(2, 10);
    const query = new URLSearchParams({ n: config.n, s: config.seconds, urls: config.urls, cache: config.cache });
    history.replaceState(null, "", `${location.pathname}?${query}`);
    runButton.disabled = true;
    statusLine.textContent = `Running: ${config.n} requests of ${config.seconds} s fired at once…`;
    window.probeResult = { status: "running", config };
    performance.clearResourceTimings();
    performance.setResourceTimingBufferSize(Math.max(250, 4 * maxN));
    try {
      const urls = Array.from({ length: config.n }, (_, i) => requestUrl(config, tag, i));
      // All fetch() calls are issued in the same task: "at once" as far as a page can.
      const requests = await Promise.all(urls.map((url, i) => fireOne(i, url, config.cache)));
      const entryCount = attachTimings(requests, tag);
      const res = analyse(config, requests, tag, entryCount);
      showSummary(res);
      draw(res);
      statusLine.textContent = `Done in ${fmt(res.elapsedMs)}.`;
      window.probeResult = res;
    } catch (err) {
      statusLine.textContent = `The probe itself failed: ${err}`;
      window.probeResult = { status: "error", config, error: String(err) };
      throw err;
    } finally {
      runButton.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  if (applyQuery()) run();
})();
