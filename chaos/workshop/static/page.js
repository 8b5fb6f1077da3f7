// What the workshop's pages share (the control room, room.js, and the game master's console, console.js): the
// element lookup, HTML escaping, the message box, the one way they call the control API, and a score's parts
// that a round did not score. Served at
// /room/static/page.js, a route every role reaches (the instructor, a team's code, watchers'), loaded before
// the page's own script. It holds no token, no scenario: the HttpOnly cookie goes along by itself.
"use strict";

function $(id) { return document.getElementById(id); }

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function say(text, info) {
  const box = $("message");
  box.textContent = text;
  box.className = "shown" + (info ? " info" : "");
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { box.className = ""; }, 6000);
}

// How a page learns its cookie was refused: the statuses that mean it (the room: 401; the console, the
// instructor's only: 401 and 403) and its hook, which may throw its own error (else the server's reason is).
const refusal = { statuses: [], hook: () => {} };

function onRefused(statuses, hook) {
  refusal.statuses = statuses;
  refusal.hook = hook;
}

async function api(method, path, body) {
  // the header tells the controller this change comes from the room's own page, not from another site's
  const options = { method, credentials: "same-origin", headers: { "X-Blackout-Room": "1" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (refusal.statuses.includes(response.status)) refusal.hook();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    throw new Error(detail || ("HTTP " + response.status));
  }
  return data;
}

// The rows of a score's table for the parts this round does not score (acknowledge with no page: n/a, neither
// given nor taken; chaos/workshop/score.py)
function unscoredRows(score) {
  return Object.entries(score.not_scored || {}).map(([k, why]) => `<tr class="na"><td>${esc(k)}</td><td>n/a (${esc(why)})</td></tr>`).join("");
}
