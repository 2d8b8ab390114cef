// page.js: what every game page (play.html) shares, whichever renderer draws it: the query
// (?room=, ?spectate=1, ?token=), a token (given, or from POST /api/join), the room's
// schema, the WebSocket client, the status message, and key names.
//
// play.html loads play.js, which reads the schema and imports the renderer the game names
// (its visuals' web_renderer, e.g. arena.js) or the generic one (render.js). A renderer
// calls joinRoom() and draws what the client holds.

import { fetchSchema, StateSyncClient } from "./ticksync.js";

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);
export const roomName = params.get("room") || "default";

export function message(text, bad = false) {
  $("message").textContent = text;
  $("message").className = bad ? "bad" : "";
}

/** The one key-name vocabulary the game's controls use (engine/controls.py KEY_NAMES):
 * "w", "1", "up", "space", "shift", "enter", "tab"; null for a key no game can bind. */
export function keyName(code) {
  if (/^Key[A-Z]$/.test(code)) return code.slice(3).toLowerCase();
  if (/^Digit[0-9]$/.test(code)) return code.slice(5);
  const named = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right", Space: "space",
                  ShiftLeft: "shift", ShiftRight: "shift", Enter: "enter", Tab: "tab" };
  return named[code] ?? null;
}

/** Mouse button (MouseEvent.button) as a key name: "mouse1" left, "mouse2" middle, "mouse3" right. */
export const mouseName = (button) => ["mouse1", "mouse2", "mouse3"][button] ?? null;

// Session ends that mean the server went away (stopped, crashed, unreachable), as the
// client's texts say them: the page says "server gone", not just how the session ended.
const SERVER_GONE = /^(server: (shutdown|room error)|timeout|connection closed)/;

/** A token, the room's schema and a connected client (connecting; ``onEvent`` hears the rest). */
export async function joinRoom({ onEvent } = {}) {
  let token = params.get("token");
  const spectate = params.get("spectate") === "1";
  if (!token) {
    const res = await fetch("api/join", { method: "POST", body: JSON.stringify({ room: roomName, spectator: spectate }) });
    const body = await res.json();
    if (!res.ok) throw new Error(`${body.error}\n(or open this page with ?token=… from \`ticksync token --room ${roomName}\`)`);
    token = body.token;
  }
  const schema = await fetchSchema(roomName, location.href);
  if (schema.mode !== "statesync") {
    throw new Error(`room ${roomName} runs ${schema.mode}; the browser speaks state sync (serve with --mode statesync),\nor play it on the desktop: ticksync play GAME udp://HOST:PORT`);
  }
  const url = new URL(schema.json.ws_path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const client = new StateSyncClient({
    url: url.href, token, schema,
    onEvent: (ev) => {
      if (ev.type === "connected") message("");
      else if (ev.type === "denied") message(`denied: ${ev.text}` + (ev.code === "room_full" ? "\nadd ?spectate=1 to watch" : ""), true);
      else if (ev.type === "disconnected" && SERVER_GONE.test(ev.text)) message(`server gone (${ev.text})\nreload to join again`, true);
      else message(`${ev.type}: ${ev.text}\nreload to join again`, true);
      if (onEvent) onEvent(ev);
    },
  });
  message("connecting…");
  client.connect();
  addEventListener("pagehide", () => client.close("page closed"));
  return { client, schema };
}

/** The HUD lines every renderer shows: game, room, slot, status, tick, RTT, snapshot rate, bytes. */
export function hudLines(client, schema, entities) {
  const s = client.stats(), fmt = (v, d = 0) => (v === null || v === undefined ? "-" : v.toFixed(d));
  const who = s.slot === null ? "" : s.slot < 0 ? "spectator" : `slot ${s.slot}`;
  return [
    `${schema.game.name} ${schema.game.version} · room ${roomName} · ${who}`,
    `status   ${client.statusText}`,
    `tick     ${s.acked < 0 ? "-" : s.acked}   entities ${entities}`,
    `rtt      ${fmt(s.rttMs, 1)} ms   jitter ${fmt(s.jitterMs, 1)} ms`,
    `snapshots ${fmt(s.snapshotHz, 1)}/s`,
    `in  ${fmt(s.bytesInPerS / 1024, 1)} KiB/s   out ${fmt(s.bytesOutPerS / 1024, 1)} KiB/s`,
  ];
}

/** The extras array ``name`` (one value per player slot) as a score table: the slots that
 * scored or are on the field, ours marked; "" when the snapshot has no such extras. */
export function scoreTable(client, schema, view, name) {
  const score = name ? view?.extras?.[name] : null;
  if (!score) return "";
  const rows = [];
  score.forEach((v, slot) => {
    const e = schema.playerEntities[slot];
    if (v || view.visible[e]) rows.push(`${slot === client.slot ? "▶" : " "} slot ${String(slot).padEnd(3)} ${String(v).padStart(4)}`);
  });
  return "score\n" + rows.join("\n");
}
