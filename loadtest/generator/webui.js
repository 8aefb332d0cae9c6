// wsgi-lab's additions to locust's start form (served by loadtest/generator/webui.py).
//
// Locust's form is a React app; this script only adds elements next to it and
// drives locust's own inputs the way a person would (typing, clicking), so the
// React state stays the source of truth:
// - "Server to load" at the top of every "Start new load test" form: picking a
//   server writes its URL into locust's Host field (what locust's header then
//   shows) and submits its name as `target`; typing a Host selects the matching
//   server, or "other".
// - The user-class picker starts with the classes of the last run ticked, or
//   io (IoUser) alone before the first run.
// - The wsgi-lab tab gets a live swimlane chart above its table: one lane per
//   (process, thread or greenlet), one bar per request of the last seconds, pale
//   for its time inside the app with a dark core as long as the CPU time it used
//   (data: ./wsgi-lab/lanes, polled while the tab is open).

const STATE_URL = "./wsgi-lab/state";
const LANES_URL = "./wsgi-lab/lanes";
const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
// Geometry of the chart, in SVG units (the chart scales to the tab's width).
const CHART = { width: 1200, label: 230, lane: 18, top: 34, bottom: 26 };
const START_TITLE = "Start new load test";
const OTHER = "none";
const enhanced = new WeakSet();

const valueSetter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;

function typeInto(input, value) {
  valueSetter.call(input, value);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

function nextFrame() {
  return new Promise((resolve) => setTimeout(resolve, 30));
}

function picker(state, hostInput) {
  const box = document.createElement("div");
  box.id = "wsgi-lab-target";
  box.style.cssText = "display:flex;flex-direction:column;gap:4px;margin:16px 0 8px";
  const label = document.createElement("label");
  label.htmlFor = "wsgi-lab-target-select";
  label.textContent = "Server to load";
  label.style.cssText = "font-weight:bold";
  const select = document.createElement("select");
  select.id = "wsgi-lab-target-select";
  select.style.cssText = "font-size:1rem;padding:8px;border-radius:4px";
  for (const t of state.targets) {
    const option = new Option(`${t.name}  (${t.url})`, t.name);
    option.title = t.explanation;
    select.add(option);
  }
  select.add(new Option("other: the Host field below", OTHER));
  const hint = document.createElement("small");
  hint.id = "wsgi-lab-target-hint";
  box.append(label, select, hint);

  const hidden = document.createElement("input");
  hidden.type = "hidden";
  hidden.name = "target";

  const byUrl = new Map(state.targets.map((t) => [t.url, t.name]));
  const byName = new Map(state.targets.map((t) => [t.name, t]));
  const show = () => {
    hidden.value = select.value;
    const t = byName.get(select.value);
    hint.textContent = t ? t.explanation : state.other; // what "other" accepts: access.py
  };
  select.addEventListener("change", () => {
    const t = byName.get(select.value);
    if (t && hostInput) typeInto(hostInput, t.url);
    show();
  });
  if (hostInput) {
    hostInput.addEventListener("input", () => {
      select.value = byUrl.get(hostInput.value.trim().replace(/\/+$/, "")) || OTHER;
      show();
    });
  }
  const current = hostInput ? hostInput.value.trim().replace(/\/+$/, "") : state.host;
  select.value = byUrl.get(current) || (current ? OTHER : state.targets[0]?.name || OTHER);
  if (!current && hostInput && byName.get(select.value)) typeInto(hostInput, byName.get(select.value).url);
  show();
  return { box, hidden };
}

async function tickClasses(container, wanted) {
  // One click at a time, re-reading the rows after each: React re-renders between clicks.
  for (let guard = 0; guard < 20; guard++) {
    const rows = [...container.querySelectorAll("tbody tr")].filter((row) => row.cells.length >= 2);
    const wrong = rows.find((row) => {
      const box = row.cells[0].querySelector("input[type=checkbox]");
      return box && box.checked !== wanted.includes(row.cells[1].textContent.trim());
    });
    if (!wrong) return;
    wrong.cells[0].click();
    await nextFrame();
  }
}

async function enhance(heading) {
  const container = heading.parentElement;
  const form = container.querySelector("form");
  if (!form || enhanced.has(form)) return;
  enhanced.add(form);
  const state = await (await fetch(STATE_URL)).json();
  const hostInput = form.querySelector("input[name=host]");
  if (state.targets.length) {
    const { box, hidden } = picker(state, hostInput);
    heading.after(box);
    form.prepend(hidden);
  }
  await tickClasses(container, state.classes);
}

function svg(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.append(el);
  return el;
}

function laneLabel(lane) {
  const thread = lane.thread.split(" (")[0];
  return lane.kind === "greenlet" ? `pid ${lane.pid} / greenlet ${thread}` : `pid ${lane.pid} / ${thread}`;
}

// Draw data from ./wsgi-lab/lanes into the <svg>: x = seconds before the last response.
function drawLanes(chart, data) {
  const { width, label, lane: laneH, top, bottom } = CHART;
  const height = top + Math.max(data.lanes.length, 1) * laneH + bottom;
  chart.replaceChildren();
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.dataset.server = data.server;
  chart.dataset.lanes = String(data.lanes.length);
  const span = data.window_s;
  const x = (t) => label + ((t + span) / span) * (width - label - 10);
  const title = svg("text", { x: 0, y: 14, "font-size": 13, "font-weight": "bold" }, chart);
  const kinds = new Set(data.lanes.map((l) => l.kind || "thread"));
  const word = kinds.has("greenlet") && kinds.size === 1 ? "greenlet" : "thread";
  title.textContent = data.lanes.length
    ? `${data.server}: who served when, last ${span} s -- one lane per (process, ${word})`
    : `${data.server}: no responses yet`;
  const legend = svg("text", { x: width - 10, y: 14, "font-size": 11, "text-anchor": "end" }, chart);
  legend.textContent = "pale: time inside the app   dark core: CPU time the request used";
  const pids = [...new Set(data.lanes.map((l) => l.pid))];
  data.lanes.forEach((lane, i) => {
    const y = top + i * laneH;
    const color = COLORS[pids.indexOf(lane.pid) % COLORS.length];
    const g = svg("g", { "data-lane": laneLabel(lane) }, chart);
    const text = svg("text", { x: label - 6, y: y + laneH * 0.7, "font-size": 11, "text-anchor": "end" }, g);
    text.textContent = laneLabel(lane);
    for (const [start, end, cpu] of lane.bars) {
      const x0 = x(Math.max(start, -span));
      const w = Math.max(x(end) - x0, 1);
      svg("rect", { x: x0, y: y + 2, width: w, height: laneH - 4, fill: color, "fill-opacity": 0.35, class: "wall" }, g);
      if (cpu) {
        const core = Math.max(Math.min(x(start + cpu) - x(start), w), 1);
        svg("rect", { x: x0, y: y + laneH * 0.3, width: core, height: laneH * 0.4, fill: color, class: "cpu" }, g);
      }
    }
  });
  const axisY = top + Math.max(data.lanes.length, 1) * laneH + 16;
  const step = span > 10 ? 5 : 1;
  for (let t = -Math.floor(span / step) * step; t <= 0; t += step) {
    const anchor = t === 0 ? "end" : "middle";
    const tick = svg("text", { x: x(t), y: axisY, "font-size": 10, "text-anchor": anchor }, chart);
    tick.textContent = t === 0 ? "last response" : `${t} s`;
  }
  if (data.hidden_lanes) {
    const more = svg("text", { x: 0, y: axisY, "font-size": 10 }, chart);
    more.textContent = `... ${data.hidden_lanes} more lanes`;
  }
}

let chartTimer = null;

async function pollLanes(chart) {
  if (!chart.isConnected) {
    chartTimer = null;
    return;
  }
  try {
    const response = await fetch(LANES_URL);
    if (response.ok) drawLanes(chart, await response.json());
  } catch (err) {
    // the UI is stopping or the network blinked: try again at the next tick
  }
  chartTimer = setTimeout(() => pollLanes(chart), POLL_MS);
}

// The wsgi-lab tab's table is the one with an "answer" column: the chart goes right above it.
function mountChart() {
  for (const table of document.querySelectorAll("table")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    if (!heads.includes("answer") || !heads.includes("thread lanes")) continue;
    const answer = heads.indexOf("answer");
    for (const row of table.querySelectorAll("tbody tr")) {
      if (row.cells[answer]) row.cells[answer].style.minWidth = "16rem";
    }
    let chart = document.getElementById("wsgi-lab-swimlanes");
    if (!chart || chart.nextElementSibling !== table) {
      chart = chart || svg("svg", { id: "wsgi-lab-swimlanes", width: "100%", role: "img" });
      chart.style.cssText = "display:block;margin:8px 0 12px;background:#fff;color:#000;font-family:sans-serif";
      table.before(chart);
    }
    if (!chartTimer) pollLanes(chart);
  }
}

function scan() {
  for (const heading of document.querySelectorAll("h2")) {
    if (heading.textContent.trim() === START_TITLE) enhance(heading);
  }
  mountChart();
}

new MutationObserver(scan).observe(document.body, { childList: true, subtree: true, characterData: true });
scan();
