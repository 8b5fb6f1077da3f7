// The game master's console: polls /console/teams (every team's round, read server-side from each stack with
// the instructor's token: the page holds none, only the HttpOnly cookie of /room?token=...) and sends the game
// master's moves through /console/teams/<stack>/<move> with the header the control API asks of its own pages.
"use strict";

const consoleState = { teams: [], kinds: [], targets: [], refused: false };
window.blackoutConsole = consoleState; // read by the browser test

// the console is the instructor's: a team's or watchers' cookie gets 403, none 401 (page.js holds $, esc, say and api)
onRefused([401, 403], () => {
  consoleState.refused = true;
  $("conn").textContent = "refused: the console is the instructor's (open /room?token=... first)";
  $("conn").className = "pill down";
});

function clock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function panel(stack) {
  let box = $("team-" + stack);
  if (box) return box;
  box = document.createElement("section");
  box.id = "team-" + stack;
  box.className = "team-panel";
  box.innerHTML = `<h2><span class="name"></span><span class="state"></span><span class="clock"></span></h2>
    <div class="body"></div>
    <div class="moves">
      <button class="give-hint" type="button">Give hint</button>
      <form class="add-fault"><select class="kind"></select><select class="target"></select>
        <input class="for" placeholder="for (s), empty: to the end" size="14"><button type="submit">Add fault</button></form>
      <form class="extend"><input class="seconds" value="60" size="5" aria-label="seconds"> s
        <button type="submit">Extend round</button></form>
      <button class="end danger" type="button">End round</button>
    </div>`;
  box.querySelector(".give-hint").addEventListener("click", () => move(stack, "hint"));
  box.querySelector(".end").addEventListener("click", () => move(stack, "end"));
  box.querySelector(".extend").addEventListener("submit", (event) => {
    event.preventDefault();
    move(stack, "extend", { seconds: parseFloat(box.querySelector(".seconds").value) });
  });
  box.querySelector(".add-fault").addEventListener("submit", (event) => {
    event.preventDefault();
    const seconds = parseFloat(box.querySelector(".for").value);
    move(stack, "fault", { kind: box.querySelector(".kind").value, target: box.querySelector(".target").value,
                           for_s: Number.isFinite(seconds) ? seconds : null });
  });
  $("teams").appendChild(box);
  return box;
}

function fill(select, options) {
  if (select.dataset.options === options.join()) return; // keep the game master's choice across polls
  select.innerHTML = options.map((o) => `<option>${esc(o)}</option>`).join("");
  select.dataset.options = options.join();
}

function render(team) {
  const box = panel(team.stack);
  const ex = team.exercise;
  box.querySelector(".name").textContent = ex ? `team ${ex.team}` : team.stack;
  box.querySelector(".state").textContent = ex ? ex.state : "no exercise";
  box.querySelector(".clock").textContent = ex ? clock(ex.clock_s) : "";
  fill(box.querySelector(".kind"), consoleState.kinds);
  fill(box.querySelector(".target"), consoleState.targets);
  box.querySelector(".moves").hidden = !ex || ex.state !== "running";
  if (!ex) {
    box.querySelector(".body").innerHTML = `<p class="why">${esc(team.why || "")}</p>`;
    return;
  }
  const h = ex.hidden;
  const at = (t) => `${(t - ex.started).toFixed(0)} s`;
  const onset = ex.onset == null ? `not yet (its first fault ~${h.first_fault_s.toFixed(0)} s in)` : at(ex.onset);
  const s = ex.score;
  const parts = Object.entries(s.parts).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join("") + unscoredRows(s)
    + Object.entries(s.penalties).filter(([, v]) => v).map(([k, v]) => `<tr><td class="lost">${esc(k)}</td><td class="lost">-${v}</td></tr>`).join("");
  const page = ex.page ? `${esc(ex.page.text)}: ` + (ex.page.acked_at ? `acknowledged after ${(ex.page.acked_at - ex.page.t).toFixed(1)} s` : "<b>not acknowledged</b>") : "not paged";
  const roles = Object.entries(ex.roles || {}).filter(([, n]) => n).map(([r, n]) => `${esc(r.replace("_", " "))}: ${esc(n)}`).join(", ") || "not set";
  const origin = team.url || location.origin;
  box.querySelector(".body").innerHTML = `
    <div class="hidden-truth">hidden: <b class="title">${esc(h.title)}</b> (<code>${esc(h.scenario)}</code>)
      on <b>${esc(h.targets.join(", ") || "nothing")}</b> [${esc(h.fault_types.join(", "))}]; onset ${onset};
      users for <span class="round">${ex.round_s.toFixed(0)} s</span>${ex.extensions.length ? ` (extended by ${ex.extensions.map((e) => `${e.seconds} s at ${at(e.t)}`).join(", ")})` : ""}
      ${ex.added_faults.length ? "<br>added: " + ex.added_faults.map((f) => `${esc(f.kind)} ${esc(JSON.stringify(f.target))} at ${at(f.t)}`).join("; ") : ""}</div>
    <div>score <b class="points">${s.points}</b> of ${s.out_of} ${s.provisional ? '<span class="provisional">provisional: as things stand now</span>' : "(final)"}
      <table class="parts">${parts}</table></div>
    <div>pager: <span class="pager">${page}</span></div>
    <div>roles: ${roles}</div>
    <div>declarations<ul class="declarations">${ex.declarations.map((d) => `<li>${at(d.t)}: ${esc(d.symptom)} at ${esc(d.where)}, ${esc(d.fault)}${d.text ? ` ("${esc(d.text)}")` : ""}</li>`).join("") || "<li>none</li>"}</ul></div>
    <div>actions (${ex.actions_left} left)<ul class="actions">${ex.actions.map((a) => `<li>${at(a.t)}: ${esc(a.action)} ${esc(typeof a.target === "string" ? a.target : JSON.stringify(a.target))}: ${esc(a.status)}</li>`).join("") || "<li>none</li>"}</ul></div>
    <div>hints (${ex.hints_left} left)<ol class="hints">${ex.hints.map((x) => `<li>${at(x.t)} ${x.by === "instructor" ? "given" : "asked"}, -${x.cost}: ${esc(x.text)}</li>`).join("")}</ol></div>
    <div>status updates<ol class="status-updates">${(ex.status_updates || []).map((u) => `<li>${at(u.t)}${u.by ? " " + esc(u.by) : ""}: ${esc(u.text)}</li>`).join("")}</ol></div>
    <div class="links">team: <code>${esc(origin)}/room?code=${esc(ex.team_code)}</code><br>
      watchers: <code>${esc(origin)}/room?watch=${esc(ex.watch_code)}</code></div>`;
}

async function move(stack, what, body) {
  if (what === "end" && !confirm(`End ${stack}'s round now?`)) return;
  try {
    await api("POST", `/console/teams/${encodeURIComponent(stack)}/${what}`, body);
    say(`${stack}: ${what} done`, true);
  } catch (error) { say(error.message); }
  refresh();
}

async function refresh() {
  try {
    const answer = await api("GET", "/console/teams");
    consoleState.teams = answer.teams;
    consoleState.kinds = answer.fault_kinds;
    consoleState.targets = answer.targets;
    for (const team of answer.teams) render(team);
    $("conn").textContent = "live";
    $("conn").className = "pill live";
  } catch (error) { if (!consoleState.refused) $("conn").textContent = error.message; }
}

async function main() {
  await refresh();
  if (consoleState.refused) return;
  setInterval(refresh, 2000);
}

main();
