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
// - The wsgi-lab tab's timeline column is shown in a fixed-width font.

const STATE_URL = "./wsgi-lab/state";
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
    hint.textContent = t ? t.explanation : "locust loads whatever URL the Host field holds";
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

function markTimeline() {
  for (const table of document.querySelectorAll("table")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
    const col = heads.findIndex((h) => h.startsWith("who served when"));
    if (col < 0) continue;
    for (const row of table.querySelectorAll("tbody tr")) {
      const cell = row.cells[col];
      if (cell && !cell.dataset.wsgiLab) {
        cell.dataset.wsgiLab = "timeline";
        cell.style.cssText = "white-space:pre;font-family:monospace;font-size:0.7rem;line-height:1.15";
      }
    }
    const answer = heads.indexOf("answer");
    for (const row of table.querySelectorAll("tbody tr")) {
      if (row.cells[answer]) row.cells[answer].style.minWidth = "16rem";
    }
  }
}

function scan() {
  for (const heading of document.querySelectorAll("h2")) {
    if (heading.textContent.trim() === START_TITLE) enhance(heading);
  }
  markTimeline();
}

new MutationObserver(scan).observe(document.body, { childList: true, subtree: true, characterData: true });
scan();
