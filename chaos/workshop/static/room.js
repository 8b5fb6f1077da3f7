// The Blackout control room: polls /room/state and /room/window, follows /room/events, and acts through the
// control API. Every call is same-origin and carries the HttpOnly cookie GET /room?token=... (the instructor)
// or /room?code=... (a team) or /room?watch=... (watchers: read-only) set; a 401 means the token is wrong or
// missing and the page says so instead of showing anything. A team acts through /exercise/act only: the other
// routes are the instructor's. Watchers see what the team sees and can change nothing.
"use strict";

const COLORS = ["#58a6ff", "#f0883e", "#a371f7", "#3fb950", "#ff7b72", "#e3b341"];
const WINDOW_S = 180;
const SLOW_CALL_MS = 500; // a call this slow is worth a look (a healthy hop answers in tens of ms)
const room = { state: null, series: {}, markers: [], refused: false, events: 0 };
window.blackoutRoom = room; // read by the browser test and handy in the console

// a 401: the token is wrong or missing; the page shows nothing (page.js holds $, esc, say and api)
onRefused([401], () => {
  refuse();
  throw new Error("refused: the control token is wrong or missing");
});

function refuse() {
  room.refused = true;
  document.body.classList.add("refused");
  $("conn").textContent = "refused: open the link `blackout exercise room` (or runs/.control.json) prints";
  $("conn").className = "pill down";
}

// -- topology ------------------------------------------------------------------------------------------
// what a team sees (a team, or watchers of one): no fault panel, no panic, no fault named while it plays
function team(state) { return !!state && (state.role === "team" || state.role === "watch"); }
function watching(state) { return !!state && state.role === "watch"; }

function renderTopology(state) {
  const root = $("topology");
  const exercise = team(state) && state.exercise && state.exercise.state === "running" ? state.exercise : null;
  for (const [dc, names] of Object.entries(state.data_centers)) {
    let box = $("dc-" + dc);
    if (!box) {
      box = document.createElement("div");
      box.id = "dc-" + dc;
      box.className = "dc";
      box.innerHTML = `<div class="dc-head"><span class="dc-name"></span><span class="dc-power"></span>
        <button class="power" id="power-${dc}"></button></div><div class="instances"></div>`;
      box.querySelector(".dc-name").textContent = dc;
      box.querySelector("button").addEventListener("click", () => togglePower(dc));
      root.appendChild(box);
    }
    const on = state.power[dc];
    box.classList.toggle("dark", !on);
    box.dataset.power = on ? "on" : "off";
    box.querySelector(".dc-power").textContent = on ? "powered" : "DARK";
    const button = box.querySelector("button");
    button.textContent = on ? "Cut power" : "Restore power";
    button.className = on ? "power danger" : "power";
    const action = on ? "power-off" : "power-on";
    // a team's buttons work only while its round runs and allows the lever (after the end: none)
    button.disabled = watching(state) || (team(state) && !(exercise && exercise.allow.includes(action)));
    box.querySelector(".instances").innerHTML = names.map((name) => instanceTile(name, state.instances[name])).join("");
  }
}

function instanceTile(name, info) {
  if (!info) return "";
  const health = info.state !== "running" ? info.state : (info.healthy ? "healthy" : "not answering");
  const classes = ["instance", info.state, info.state === "running" && !info.healthy ? "unhealthy" : ""].join(" ");
  const breakers = (info.breakers || []).filter((b) => b.state !== "closed")
    .map((b) => `<span class="breaker ${b.state}" title="${esc(b.dependency)} breaker">${esc(b.target)} ${b.state}</span>`).join("");
  // how long its calls to each dependency took lately (chaos/workshop/probe.py): where a slow one shows
  const calls = (info.calls || []).map((c) =>
    `<span class="call${c.mean_ms >= SLOW_CALL_MS ? " slow" : ""}" title="${c.calls} calls, last ~15 s">` +
    `${esc(c.dependency)} ${Math.round(c.mean_ms)} ms</span>`).join(" ");
  return `<div class="${classes}" id="inst-${esc(name)}" data-state="${esc(info.state)}">
    <div class="name">${esc(name)}</div><div class="meta">${esc(info.service)} :${info.port} ${esc(health)}</div>
    <div class="meta">${info.profile ? esc(info.profile) : ""}</div>${breakers}
    ${calls ? `<div class="calls">calls: ${calls}</div>` : ""}</div>`;
}

async function togglePower(dc) {
  const on = room.state && room.state.power[dc];
  try {
    if (team(room.state)) {
      await api("POST", "/exercise/act", { action: on ? "power-off" : "power-on", target: dc });
    } else {
      await api("POST", `/power/${encodeURIComponent(dc)}/${on ? "off" : "on"}`);
    }
    say(`${dc}: power ${on ? "cut" : "restored"}`, true);
  } catch (error) { say(error.message); }
  refreshState();
}

// -- faults ----------------------------------------------------------------------------------------------
function renderFaults(state) {
  $("faults-panel").hidden = team(state); // trainees remediate; they do not inject
  $("panic").hidden = team(state); // the instructor's lever: it ends the round for everyone
  $("faults").innerHTML = state.faults.map((f) =>
    `<li><code>${esc(f.id)}</code> ${esc(JSON.stringify(f.action))} <button data-fault="${esc(f.id)}">Remove</button></li>`).join("")
    || "<li class='meta'>no hand-made faults</li>";
  for (const button of $("faults").querySelectorAll("button[data-fault]")) {
    button.addEventListener("click", async () => {
      try { await api("DELETE", "/faults/" + encodeURIComponent(button.dataset.fault)); } catch (e) { say(e.message); }
      refreshState();
    });
  }
}

async function injectFault(event) {
  event.preventDefault();
  const kind = $("fault-kind").value, from = $("fault-from").value.trim(), to = $("fault-to").value.trim();
  const amount = Number($("fault-amount").value), duration = $("fault-for").value.trim();
  let spec;
  if (kind === "partition") spec = [from, to];
  else if (kind === "brownout") spec = { target: from, ms: amount };
  else if (kind === "errors") spec = { from, to, rate: amount > 1 ? amount / 100 : amount };
  else if (kind === "blackhole") spec = { from, to };
  else spec = { from, to, ms: amount };
  const body = { [kind]: spec };
  if (duration) body["for"] = duration;
  try {
    const answer = await api("POST", "/faults", body);
    say(`injected ${answer.id}`, true);
  } catch (error) { say(error.message); }
  refreshState();
}

// -- exercise --------------------------------------------------------------------------------------------
function renderExercise(state) {
  const ex = state.exercise;
  $("exercise").hidden = !ex;
  if (!ex) return;
  $("team").textContent = `team ${ex.team}` + (ex.state === "ended" ? " (ended)" : "");
  const clock = Math.floor(ex.clock_s);
  const detected = ex.state === "running" ? "told at the end"
    : ex.detected_after_s == null ? "never" : `${ex.detected_after_s} s after the fault`;
  $("timers").innerHTML = `<div>clock<b id="ex-clock">${Math.floor(clock / 60)}:${String(clock % 60).padStart(2, "0")}</b></div>
    <div>detected<b id="ex-detected">${esc(detected)}</b></div>
    <div>actions left<b>${ex.actions_left}</b></div>
    <div>fault comes<b>${ex.fault_window_s[0]}-${ex.fault_window_s[1]} s late</b></div>`
    + (ex.team_code ? `<div>team's link<b id="ex-link">${esc(location.origin)}/room?code=${esc(ex.team_code)}</b></div>` : "");
  const select = $("act-action");
  if (select.dataset.allow !== ex.allow.join()) {
    select.innerHTML = ex.allow.map((a) => `<option>${esc(a)}</option>`).join("");
    select.dataset.allow = ex.allow.join();
  }
  const playing = ex.state === "running";
  const moves = playing && !watching(state); // watchers (Wheel of Misfortune) see the round, never play it
  $("detect-form").hidden = !moves;
  $("act-form").hidden = !moves;
  $("roles-form").hidden = !moves;
  $("status-form").hidden = !moves;
  $("hint-box").hidden = !playing && !ex.hints.length;
  $("hint").hidden = !moves || !ex.hints_left;
  $("hint-cost").textContent = moves && ex.hints_left ? `costs ${ex.next_hint_cost} points (${ex.hints_left} left)` : "";
  $("hints").innerHTML = ex.hints.map((h) => `<li>${esc(h.text)} <small>(-${h.cost}${h.by === "instructor" ? ", from the game master" : ""})</small></li>`).join("");
  for (const [slot, name] of Object.entries(ex.roles || {})) {
    const input = $("role-" + slot);
    if (input && document.activeElement !== input) input.value = name; // never overwrite what is being typed
  }
  $("status-updates").innerHTML = (ex.status_updates || []).map((u) => `<li>${(u.t - ex.started).toFixed(0)} s`
    + ` (${new Date(u.t * 1000).toLocaleTimeString()})${u.by ? " " + esc(u.by) : ""}: ${esc(u.text)}</li>`).join("");
  for (const field of ["symptom", "where", "fault"]) fillSelect($("detect-" + field), ex.vocabulary[field]);
  renderPage(ex, moves);
  const mine = ex.declarations.map((d) => ({ t: d.t, text: `declared: ${d.symptom} at ${d.where}, ${d.fault}` + (d.text ? ` ("${d.text}")` : "") }))
    .concat(ex.actions.map((a) => ({ t: a.t, text: `${a.action} ${a.target || ""}: ${a.status}${a.error ? " (" + a.error + ")" : ""}` })))
    .sort((a, b) => a.t - b.t);
  $("declarations").innerHTML = mine.map((m) => `<li>${(m.t - ex.started).toFixed(0)} s: ${esc(m.text)}</li>`).join("");
  if (ex.score) {
    const s = ex.score, fmt = (v) => (v == null ? "never" : v + " s");
    const parts = Object.entries(s.parts).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join("") + unscoredRows(s)
      + Object.entries(s.penalties).filter(([, v]) => v).map(([k, v]) => `<tr class="lost"><td>${esc(k)}</td><td>-${v}</td></tr>`).join("");
    const answer = ex.hidden.card && ex.hidden.card.answer;
    const model = answer ? `<p id="ex-answer">Model answer: ${esc(answer.symptom)} at ${esc(answer.where)}, ${esc(answer.fault)};
      detect within ${answer.detect_s} s, mitigate within ${answer.mitigate_s} s. ${esc(answer.summary)}</p>`
      : (ex.hidden.control ? `<p id="ex-answer">Model answer: no incident (a control round).</p>` : "");
    $("exercise-result").innerHTML = `<p><b>${esc(ex.hidden.title)}</b>, ${ex.hidden.offset_s} s late. Score <b id="ex-points">${s.points}</b> of ${s.out_of}</p>
      <table><tr><td>time to acknowledge</td><td>${s.paged ? fmt(s.ack_s) : "no page"}</td></tr>
      <tr><td>time to detect</td><td>${fmt(s.detect_s)}</td></tr><tr><td>time to mitigate</td><td>${fmt(s.mitigate_s)}</td></tr>
      <tr><td>time to recover</td><td>${fmt(s.recover_s)}</td></tr><tr><td>requests not served</td><td>~${s.unserved} of ~${s.expected} (${s.failed} failed)</td></tr></table>
      ${model}<table id="ex-parts">${parts}</table>
      <p>Draft: <code>${esc(ex.draft)}</code></p>`;
  } else {
    $("exercise-result").innerHTML = "";
  }
}

function fillSelect(select, options) {
  if (select.dataset.options === options.join()) return; // keep the team's choice across polls
  select.innerHTML = options.map((o) => `<option>${esc(o)}</option>`).join("");
  select.dataset.options = options.join();
}

function renderPage(ex, playing) {
  const page = ex.page;
  $("page").hidden = !page;
  if (!page) return;
  $("page").className = page.acked_at ? "acked" : "firing";
  $("page-text").textContent = page.text + (page.acked_at ? ` (acknowledged after ${(page.acked_at - page.t).toFixed(1)} s)` : "");
  $("page-runbooks").innerHTML = "runbooks: " + page.runbooks.map((r) => `<a href="/room/runbooks/${esc(r)}" target="_blank">${esc(r)}</a>`).join(" ");
  $("ack").hidden = !playing || !!page.acked_at;
}

async function takeHint() {
  try {
    const hint = await api("POST", "/exercise/hint");
    say(`hint ${hint.n}: -${hint.cost} points`, true);
  } catch (error) { say(error.message); }
  refreshState();
}

async function acknowledge() {
  try {
    const page = await api("POST", "/exercise/ack");
    say(`acknowledged after ${(page.acked_at - page.t).toFixed(1)} s`, true);
  } catch (error) { say(error.message); }
  refreshState();
}

async function declare(event) {
  event.preventDefault();
  const body = { symptom: $("detect-symptom").value, where: $("detect-where").value, fault: $("detect-fault").value,
                 text: $("detect-text").value.trim() };
  try {
    await api("POST", "/exercise/detect", body);
    $("detect-text").value = "";
    say("declared", true);
  } catch (error) { say(error.message); }
  refreshState();
}

async function setRoles(event) {
  event.preventDefault();
  const body = {};
  for (const slot of ["incident_commander", "ops", "communications"]) body[slot] = $("role-" + slot).value.trim();
  try {
    await api("POST", "/exercise/roles", body);
    say("roles set", true);
  } catch (error) { say(error.message); }
  refreshState();
}

async function postStatus(event) {
  event.preventDefault();
  try {
    await api("POST", "/exercise/status-update", { text: $("status-text").value.trim() });
    $("status-text").value = "";
    say("status update posted", true);
  } catch (error) { say(error.message); }
  refreshState();
}

async function act(event) {
  event.preventDefault();
  try {
    await api("POST", "/exercise/act", { action: $("act-action").value, target: $("act-target").value.trim() || null });
    say("done", true);
  } catch (error) { say(error.message); }
  refreshState();
}

// -- charts ----------------------------------------------------------------------------------------------
function drawChart(canvas, series, key, scale, format, guide) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 48, right = 10, top = 10, bottom = 22;
  const now = room.windowNow || Date.now() / 1000, start = now - WINDOW_S;
  const x = (t) => left + ((t - start) / WINDOW_S) * (w - left - right);
  const y = (v) => top + (1 - Math.min(v / scale, 1)) * (h - top - bottom);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  ctx.strokeStyle = "#232a33";
  ctx.fillStyle = "#8b97a5";
  for (let i = 0; i <= 4; i++) {
    const v = (scale * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillText(format(v), 4, y(v) + 4);
  }
  for (let s = 0; s <= WINDOW_S; s += 30) ctx.fillText(`-${WINDOW_S - s}s`, x(start + s) - 12, h - 6);
  if (guide != null) {
    ctx.setLineDash([4, 4]); ctx.strokeStyle = "#6e7681";
    ctx.beginPath(); ctx.moveTo(left, y(guide)); ctx.lineTo(w - right, y(guide)); ctx.stroke();
    ctx.setLineDash([]);
  }
  let row = 0, lastX = -1e9;
  for (const marker of room.markers) {
    if (marker.t < start) continue;
    const mx = x(marker.t);
    row = mx - lastX < 70 ? row + 1 : 0; // labels of events close in time stack instead of overlapping
    lastX = mx;
    ctx.strokeStyle = marker.color; ctx.fillStyle = marker.color;
    ctx.beginPath(); ctx.moveTo(mx, top); ctx.lineTo(mx, h - bottom); ctx.stroke();
    const width = ctx.measureText(marker.label).width;
    ctx.fillText(marker.label, mx + width + 6 > w - right ? mx - width - 3 : mx + 3, top + 10 + 12 * (row % 6));
  }
  const count = Object.keys(series).length;
  Object.keys(series).forEach((dc, i) => {
    // each line thinner than the one drawn before it: two data centers both at 100% show as two colours
    const width = 2 + 2 * (count - 1 - i);
    ctx.strokeStyle = ctx.fillStyle = COLORS[i % COLORS.length];
    for (const point of series[dc]) { // a dot per bucket: a lone bucket between gaps still shows
      if (point[key] == null) continue;
      ctx.beginPath(); ctx.arc(x(point.t), y(point[key]), 1.5 + width / 2, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.lineWidth = width;
    ctx.beginPath();
    let drawing = false;
    for (const point of series[dc]) {
      const v = point[key];
      if (v == null) { drawing = false; continue; } // no finished request: a gap, never a made-up value
      if (drawing) ctx.lineTo(x(point.t), y(v)); else ctx.moveTo(x(point.t), y(v));
      drawing = true;
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  });
}

function drawCharts() {
  const series = room.series;
  let worst = 1000;
  for (const points of Object.values(series)) for (const p of points) if (p.p99_ms != null) worst = Math.max(worst, p.p99_ms);
  drawChart($("success-chart"), series, "success", 1, (v) => `${Math.round(v * 100)}%`, 0.9);
  drawChart($("p99-chart"), series, "p99_ms", Math.ceil(worst / 1000) * 1000, (v) => `${(v / 1000).toFixed(1)}s`, null);
  $("legend").innerHTML = Object.keys(series).map((dc, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(dc)}</span>`).join("");
}

// -- events ----------------------------------------------------------------------------------------------
const MARKED = { "power-off": "#f85149", "power-on": "#3fb950", "fault-on": "#d29922", "fault-off": "#8b97a5",
                 "exercise-detect": "#58a6ff", "exercise-act": "#a371f7", "panic": "#f85149", "page": "#ff7b72" };

function describe(e) {
  switch (e.event) {
    case "power-off": return `${e.dc} powered off (${(e.instances || []).length} instances SIGKILLed)`;
    case "power-on": return `${e.dc} powered on in ${Number(e.seconds || 0).toFixed(1)} s${e.healthy === false ? " (unhealthy)" : ""}`;
    case "fault-on": return `fault ${e.id}: ${JSON.stringify(e.action)}`;
    case "fault-off": return `fault ${e.id} removed`;
    case "hypothesis": {
      const shown = (e.probes || []).filter((p) => p.status !== "no data").map((p) => `${p.probe} ${p.shown}`).join(", ");
      return `steady state ${e.met === true ? "holds" : e.met === false ? "DEVIATES" : "no data"}` + (shown ? `: ${shown}` : "");
    }
    case "exercise-detect": return `team ${e.team} declared: ${e.symptom} at ${e.where}, ${e.fault}` + (e.text ? ` ("${e.text}")` : "");
    case "exercise-hint": return e.by === "instructor" ? `the game master gave team ${e.team} hint ${e.n} (-${e.cost})`
      : `team ${e.team} took hint ${e.n} (-${e.cost})`;
    case "page": return `PAGE: ${e.text}`;
    case "page-ack": return `team ${e.team} acknowledged the page after ${e.after_s} s`;
    case "exercise-act": return `team ${e.team}: ${e.action} ${e.target || ""} (${e.status})`;
    case "phase": return `phase ${e.phase}`;
    case "recovered": return `recovered after ${Number(e.after_s).toFixed(1)} s`;
    case "profile": return `profile switched to ${e.profile}`;
    default: return e.event;
  }
}

function onEvent(e) {
  room.events += 1;
  const item = document.createElement("li");
  item.className = e.event;
  item.textContent = `${new Date(e.t * 1000).toLocaleTimeString()}  ${describe(e)}`;
  const log = $("log");
  log.insertBefore(item, log.firstChild);
  while (log.children.length > 300) log.removeChild(log.lastChild);
  if (MARKED[e.event]) {
    const label = e.event === "power-off" || e.event === "power-on" ? `${e.dc} ${e.event === "power-off" ? "off" : "on"}` : e.event.replace("exercise-", "");
    room.markers.push({ t: e.t, color: MARKED[e.event], label });
    if (room.markers.length > 200) room.markers.shift();
  }
  if (/^(power|fault|exercise|page)/.test(e.event)) refreshState();
}

function follow() {
  const source = new EventSource("/room/events", { withCredentials: true });
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "pill live"; };
  source.onerror = () => {
    if (!room.refused) { $("conn").textContent = "reconnecting..."; $("conn").className = "pill down"; }
  };
  source.onmessage = (m) => onEvent(JSON.parse(m.data));
  for (const kind of ["power-off", "power-on", "fault-on", "fault-off", "hypothesis", "exercise-detect", "exercise-act",
                      "exercise-hint", "page", "page-ack",
                      "phase", "recovered", "profile", "panic", "end", "aborted", "start"]) {
    source.addEventListener(kind, (m) => onEvent(JSON.parse(m.data)));
  }
}

// -- polling ---------------------------------------------------------------------------------------------
async function refreshState() {
  try {
    const state = await api("GET", "/room/state");
    room.state = state;
    renderTopology(state);
    renderFaults(state);
    renderExercise(state);
    $("run").textContent = state.run.running ? "users under load" : "no load";
    $("run").className = "pill" + (state.run.running ? " live" : "");
  } catch (error) { if (!room.refused) $("conn").textContent = error.message; }
}

async function refreshWindow() {
  try {
    const answer = await api("GET", `/room/window?seconds=${WINDOW_S}&bucket=5`);
    room.series = answer.series;
    room.windowNow = answer.now;
    drawCharts();
  } catch (error) { /* the state poll reports it */ }
}

async function main() {
  $("fault-form").addEventListener("submit", injectFault);
  $("detect-form").addEventListener("submit", declare);
  $("act-form").addEventListener("submit", act);
  $("roles-form").addEventListener("submit", setRoles);
  $("status-form").addEventListener("submit", postStatus);
  $("hint").addEventListener("click", takeHint);
  $("ack").addEventListener("click", acknowledge);
  $("panic").addEventListener("click", async () => {
    try {
      await api("POST", "/panic");
      say("panic: every fault removed, all power restored", true);
    } catch (error) { say(error.message); }
    refreshState();
  });
  await refreshState();
  if (room.refused) return;
  follow();
  refreshWindow();
  setInterval(refreshState, 1000);
  setInterval(refreshWindow, 2000);
}

main();
