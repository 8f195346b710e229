// SURE-VQA rater study page. Plain JS, no dependencies. Every text from the study is set with textContent,
// never as HTML. A rating counts as saved only when the server answered after its commit; until then it is
// kept in a queue that is retried (the server may be restarting) and the page says so.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  rater: null,
  studyId: null,
  items: [],
  scales: {},
  pos: 0,
  // qid -> {score, requestId}: ratings chosen but not yet acknowledged; one request in flight at a time,
  // so the last click on a question is the one that ends up stored.
  pending: new Map(),
  sending: false,
  retrying: false,  // the last attempt got no answer (server down or restarting)
  lastError: null,
};

function requestId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { status: response.status, ok: response.ok, data };
}

function errorText(data, fallback) {
  if (data && typeof data.detail === "string") return data.detail;
  if (data && Array.isArray(data.detail) && data.detail.length) return data.detail[0].msg || fallback;
  return fallback;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- login -------------------------------------------------------------------------------------------

async function loadStudies() {
  const result = await api("GET", "/api/studies");
  const select = $("login-study");
  select.textContent = "";
  for (const study of result.data || []) {
    const option = document.createElement("option");
    option.value = study.study_id;
    option.textContent = `${study.study_id} (${study.answer_kind} questions, ${study.n_items})`;
    select.appendChild(option);
  }
  $("study-choice").hidden = select.options.length < 2;
  const remembered = localStorage.getItem("sure-vqa:study");
  if (remembered && Array.from(select.options).some((o) => o.value === remembered)) select.value = remembered;
  return select.options.length;
}

async function onLogin(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const name = $("login-name").value.trim();
  const code = $("login-code").value.trim();
  const result = await api("POST", "/api/login", { name, code: code || null });
  if (!result.ok) {
    $("login-error").textContent = errorText(result.data, "could not log in");
    return;
  }
  if (result.data.code) {
    $("code-value").textContent = result.data.code;
    $("code-notice").hidden = false;
  }
  await startRating(result.data.rater, $("login-study").value);
}

async function onLogout() {
  if (state.pending.size && !confirm("Some ratings are not saved yet. Log out anyway?")) return;
  await api("POST", "/api/logout");
  location.reload();
}

// --- rating ------------------------------------------------------------------------------------------

function positionKey() { return `sure-vqa:${state.studyId}:${state.rater}:pos`; }

async function startRating(rater, studyId) {
  const result = await api("GET", `/api/studies/${encodeURIComponent(studyId)}/items`);
  if (!result.ok) {
    $("login-error").textContent = errorText(result.data, "could not load the study");
    showView("login");
    return;
  }
  state.rater = rater;
  state.studyId = studyId;
  state.items = result.data.items.map((item) => ({ ...item, saved: item.score }));
  state.scales = result.data.scales;
  localStorage.setItem("sure-vqa:study", studyId);
  const stored = parseInt(localStorage.getItem(positionKey()) || "", 10);
  const firstUnrated = state.items.findIndex((item) => item.saved === null);
  state.pos = Number.isInteger(stored) && stored >= 0 && stored < state.items.length
    ? stored : Math.max(0, firstUnrated);
  $("rater-name").textContent = rater;
  $("who").hidden = false;
  renderRubric();
  renderNavigator();
  showView("rate");
  render();
}

function showView(name) {
  $("login-view").hidden = name !== "login";
  $("rate-view").hidden = name !== "rate";
}

function formatValue(scaleName, value) {
  if (scaleName === "open") return "\u2605".repeat(value);
  return String(value);
}

function renderRubric() {
  const box = $("rubric");
  box.textContent = "";
  for (const [name, scale] of Object.entries(state.scales)) {
    if (Object.keys(state.scales).length > 1) {
      const title = document.createElement("h3");
      title.textContent = scale.title;
      box.appendChild(title);
    }
    const instruction = document.createElement("p");
    instruction.textContent = scale.instruction;
    box.appendChild(instruction);
    const list = document.createElement("ol");
    for (const option of scale.options) {
      const li = document.createElement("li");
      const value = document.createElement("span");
      value.className = "value" + (name === "open" ? " stars" : "");
      value.textContent = formatValue(name, option.value);
      const label = document.createElement("span");
      label.textContent = option.label;
      li.append(value, label);
      list.appendChild(li);
    }
    box.appendChild(list);
  }
}

function renderNavigator() {
  const nav = $("navigator");
  nav.textContent = "";
  state.items.forEach((item, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(index + 1);
    button.dataset.index = String(index);
    button.addEventListener("click", () => go(index));
    nav.appendChild(button);
  });
}

function displayedScore(item) {
  const pending = state.pending.get(item.qid);
  return pending ? pending.score : item.saved;
}

function render() {
  const item = state.items[state.pos];
  const scale = state.scales[item.scale];
  $("position").textContent = String(state.pos + 1);
  $("position-total").textContent = String(state.items.length);
  const img = $("item-image");
  if (img.getAttribute("src") !== item.image_url) img.src = item.image_url;
  $("item-question").textContent = item.question;
  $("item-gt").textContent = item.gt;
  $("item-pred").textContent = item.pred;
  $("scale-instruction").textContent = scale.instruction;

  const buttons = $("scale-buttons");
  buttons.textContent = "";
  const current = displayedScore(item);
  scale.options.forEach((option, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", String(current === option.value));
    button.dataset.score = String(option.value);
    button.title = `key ${index + 1}`;
    const value = document.createElement("span");
    value.className = "value" + (item.scale === "open" ? " stars" : "");
    value.textContent = formatValue(item.scale, option.value);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = option.label;
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = `key ${index + 1}`;
    button.append(value, label, key);
    button.addEventListener("click", () => rate(item, option.value));
    buttons.appendChild(button);
  });

  $("prev").disabled = state.pos === 0;
  $("next").disabled = state.pos === state.items.length - 1;
  renderProgress();
  renderSaveStatus();
  localStorage.setItem(positionKey(), String(state.pos));
}

function renderProgress() {
  const rated = state.items.filter((item) => item.saved !== null).length;
  $("rated-count").textContent = String(rated);
  $("total-count").textContent = String(state.items.length);
  $("progress-fill").style.width = `${(100 * rated) / state.items.length}%`;
  for (const button of $("navigator").children) {
    const index = Number(button.dataset.index);
    button.classList.toggle("rated", state.items[index].saved !== null);
    button.classList.toggle("current", index === state.pos);
  }
}

function renderSaveStatus() {
  const status = $("save-status");
  const item = state.items[state.pos];
  status.className = "save-status";
  if (state.lastError) {
    status.textContent = state.lastError;
    status.classList.add("failed");
  } else if (state.pending.has(item.qid)) {
    status.textContent = state.retrying
      ? "Not saved yet \u2014 the server does not answer; retrying\u2026" : "Saving\u2026";
    status.classList.add("pending");
  } else if (item.saved !== null) {
    status.textContent = `Saved: ${formatValue(item.scale, item.saved)}`;
    status.classList.add("ok");
  } else {
    status.textContent = "Not rated yet";
  }
}

function go(index) {
  if (index < 0 || index >= state.items.length) return;
  state.pos = index;
  render();
}

function rate(item, score) {
  state.lastError = null;
  state.pending.set(item.qid, { score, requestId: requestId() });
  render();
  flush();
}

async function flush() {
  if (state.sending) return;
  state.sending = true;
  let delay = 500;
  try {
    while (state.pending.size) {
      const [qid, entry] = state.pending.entries().next().value;
      let result;
      try {
        result = await api("POST", `/api/studies/${encodeURIComponent(state.studyId)}/ratings`,
          { qid, score: entry.score, request_id: entry.requestId });
      } catch (_) {
        result = { status: 0, ok: false, data: null };  // network error: the server is down or restarting
      }
      const item = state.items.find((candidate) => candidate.qid === qid);
      if (result.ok) {
        item.saved = result.data.score;
        if (state.pending.get(qid) === entry) state.pending.delete(qid);
        delay = 500;
      } else if (result.status === 0 || result.status >= 500) {
        state.retrying = true;
        renderSaveStatus();
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
        continue;
      } else if (result.status === 401) {
        state.lastError = "Your session ended: log in again (your unsaved rating is lost).";
        state.pending.clear();
      } else {
        state.lastError = "Not saved: " + errorText(result.data, `error ${result.status}`);
        if (state.pending.get(qid) === entry) state.pending.delete(qid);
      }
      state.retrying = false;
      render();
    }
  } finally {
    state.sending = false;
    render();
  }
}

function onKey(event) {
  if ($("rate-view").hidden || event.target.tagName === "INPUT") return;
  if (event.key === "ArrowLeft") go(state.pos - 1);
  else if (event.key === "ArrowRight") go(state.pos + 1);
  else if (/^[1-9]$/.test(event.key)) {
    const item = state.items[state.pos];
    const option = state.scales[item.scale].options[Number(event.key) - 1];
    if (option) rate(item, option.value);
  }
}

async function init() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("prev").addEventListener("click", () => go(state.pos - 1));
  $("next").addEventListener("click", () => go(state.pos + 1));
  $("next-unrated").addEventListener("click", () => {
    const n = state.items.length;
    for (let step = 1; step <= n; step++) {
      const index = (state.pos + step) % n;
      if (state.items[index].saved === null && !state.pending.has(state.items[index].qid)) { go(index); return; }
    }
  });
  $("code-dismiss").addEventListener("click", () => { $("code-notice").hidden = true; });
  document.addEventListener("keydown", onKey);
  window.addEventListener("beforeunload", (event) => {
    if (state.pending.size) { event.preventDefault(); event.returnValue = ""; }
  });

  const count = await loadStudies();
  if (count === 0) {
    $("login-error").textContent = "This server has no study.";
    return;
  }
  const session = await api("GET", "/api/session");
  if (session.ok) await startRating(session.data.rater, $("login-study").value);
  else showView("login");
}

init();
