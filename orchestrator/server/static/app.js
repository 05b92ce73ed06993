// The control room's one script: token for this tab, fragments from /ui/*, live updates from /api/events.
// The event stream is read with fetch (EventSource cannot send an Authorization header).
"use strict";

const KEY = "clawdbot.control.token";
const body = document.body;
const view = document.getElementById("view");
const live = document.getElementById("live");
let group = "none";
let stream = null;

function token() { return sessionStorage.getItem(KEY); }

function askToken(message) {
  const dialog = document.getElementById("login");
  const error = document.getElementById("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  if (!dialog.open) dialog.showModal();
}

document.getElementById("login-form").addEventListener("submit", () => {
  const value = document.getElementById("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(KEY, value);
  document.getElementById("token").value = "";
  start();
});

document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  if (stream) stream.abort();
  location.reload();
});

async function call(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    askToken("That token was refused (wrong, or removed).");
    throw new Error("unauthorized");
  }
  return response;
}

async function fragment(path) {
  const response = await call(path);
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try { message = JSON.parse(text).error; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  const template = document.createElement("template");
  template.innerHTML = text;
  return template.content;
}

function fragmentPath() {
  if (body.dataset.view === "tenant") return "/ui/tenants/" + encodeURIComponent(body.dataset.tenant);
  if (body.dataset.view === "jobs") return "/ui/jobs";
  return "/ui/overview?group=" + encodeURIComponent(group);
}

async function render() {
  try {
    const content = await fragment(fragmentPath());
    view.replaceChildren(content);
    applySearch();
  } catch (error) {
    if (error.message !== "unauthorized") view.replaceChildren(errorLine(error.message));
  }
}

function errorLine(message) {
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = message;
  return p;
}

// --- search and grouping (200 tenants) ---------------------------------------------------------

function applySearch() {
  const input = document.getElementById("search");
  if (!input) return;
  const needle = input.value.trim().toLowerCase();
  for (const box of document.querySelectorAll("[data-tenant-box]")) {
    box.hidden = needle !== "" && !box.dataset.search.toLowerCase().includes(needle);
  }
  for (const details of document.querySelectorAll("details.group")) {
    details.hidden = details.querySelectorAll("[data-tenant-box]:not([hidden])").length === 0;
  }
}

function recount() {
  const counts = { ok: 0, warn: 0, bad: 0, unknown: 0 };
  for (const box of document.querySelectorAll(".grid [data-tenant-box]")) {
    for (const cls of Object.keys(counts)) if (box.classList.contains(cls)) counts[cls] += 1;
  }
  for (const [cls, n] of Object.entries(counts)) {
    const cell = document.querySelector(`[data-count="${cls}"]`);
    if (cell) cell.textContent = String(n);
  }
}

document.addEventListener("input", (event) => { if (event.target.id === "search") applySearch(); });
document.addEventListener("change", (event) => {
  if (event.target.id === "group") { group = event.target.value; render(); }
});

// --- jobs -----------------------------------------------------------------------------------------

async function startJob(operation, tenants, errorBox, engine = "embedded") {
  const selection = tenants.length ? { tenants } : { all: true };
  const response = await call("/api/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(Object.assign({ operation, engine }, selection)),
  });
  const answer = await response.json();
  if (!response.ok) {
    errorBox.hidden = false;
    errorBox.textContent = answer.error;
    return;
  }
  errorBox.hidden = true;
  await refreshJob(answer.id);
}

document.addEventListener("submit", (event) => {
  if (event.target.id !== "job-form") return;
  event.preventDefault();
  const form = event.target;
  const tenants = form.tenants.value.split(/[\s,]+/).filter(Boolean);
  startJob(form.operation.value, tenants, document.getElementById("job-error"), form.engine.value).catch(() => {});
});

document.addEventListener("click", (event) => {
  const run = event.target.closest("[data-run]");
  if (run) {
    startJob(run.dataset.run, [run.dataset.tenant], document.getElementById("job-error")).catch(() => {});
    return;
  }
  const cancel = event.target.closest("[data-cancel]");
  if (cancel) {
    call(`/api/jobs/${encodeURIComponent(cancel.dataset.cancel)}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    }).catch(() => {});
  }
});

async function refreshJob(id) {
  const list = document.getElementById("job-list");
  if (!list) return;
  const content = await fragment("/ui/jobs/" + encodeURIComponent(id));
  const fresh = content.firstElementChild;
  const old = list.querySelector(`[data-job="${CSS.escape(id)}"]`);
  if (old) old.replaceWith(fresh);
  else {
    const none = document.getElementById("no-jobs");
    if (none) none.remove();
    list.prepend(fresh);
  }
}

// --- live updates --------------------------------------------------------------------------------

const pendingBoxes = new Set();
const jobStates = new Map();
let boxTimer = null;

function queueBox(tenant) {
  pendingBoxes.add(tenant);
  if (boxTimer === null) boxTimer = setTimeout(flushBoxes, 150);
}

async function flushBoxes() {
  boxTimer = null;
  const wanted = [...pendingBoxes];
  pendingBoxes.clear();
  if (body.dataset.view === "tenant") { if (wanted.includes(body.dataset.tenant)) render(); return; }
  if (body.dataset.view !== "overview" || !wanted.length) return;
  const query = wanted.map((t) => "tenant=" + encodeURIComponent(t)).join("&");
  const content = await fragment("/ui/boxes?" + query);
  for (const fresh of [...content.children]) {
    const old = document.querySelector(`.grid [data-tenant-box="${CSS.escape(fresh.dataset.tenantBox)}"]`);
    if (old) old.replaceWith(fresh);
  }
  if (group !== "none") render(); else { applySearch(); recount(); }
}

const handlers = {
  hello: () => render(),
  resync: () => render(),
  tenant: (data) => queueBox(data.tenant),
  job: (data) => {
    if (body.dataset.view === "jobs") refreshJob(data.id).catch(() => {});
    // A tenant's box shows whether a job holds it: redraw those boxes when the job changes state.
    if (jobStates.get(data.id) !== data.state) for (const item of data.tenants) queueBox(item.tenant);
    jobStates.set(data.id, data.state);
  },
  scheduler: async () => {
    const box = document.getElementById("scheduler");
    if (box) box.replaceWith(await fragment("/ui/scheduler"));
  },
  status: () => {},
};

function setLive(on) {
  live.textContent = on ? "live" : "reconnecting…";
  live.className = "live " + (on ? "on" : "off");
  body.dataset.live = on ? "on" : "off";
}

async function listen() {
  let delay = 1000;
  while (token()) {
    stream = new AbortController();
    try {
      const response = await call("/api/events", { signal: stream.signal });
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      setLive(true);
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (error.message === "unauthorized" || error.name === "AbortError") return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

function dispatch(block) {
  let kind = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  const handler = handlers[kind];
  if (!handler || !data) return;
  try { Promise.resolve(handler(JSON.parse(data))).catch(() => {}); } catch (e) { /* a bad frame is skipped */ }
}

function start() {
  document.getElementById("forget").hidden = false;
  listen();
}

if (token()) start(); else askToken("");
