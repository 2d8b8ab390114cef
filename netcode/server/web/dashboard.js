// The ticksync dashboard: polls api/dashboard once a second and draws every room: its
// numbers, two live charts (tick time, bandwidth) on plain canvases, its players, and a
// spectate link. Room cards are kept between polls (keyed by room name) so charts do not
// flicker; a room that closed is removed.
"use strict";

const POLL_MS = 1000;
const cards = new Map(); // room name -> {el, parts}
const lastBytes = new Map(); // room/slot-or-user -> {t, inB, outB}: per-player kbps

const HEADERS = [
  ["slot", "Player slot (spectators take none)", "l"],
  ["user", "User id from the connect token", "l"],
  ["RTT ms", "Round-trip time, smoothed"],
  ["jitter ms", "Mean deviation of the round-trip time"],
  ["loss %", "Server packets the player never acknowledged"],
  ["kbps in", "Bandwidth from the player, last second"],
  ["kbps out", "Bandwidth to the player, last second"],
  ["bytes in", "Total bytes received from the player"],
  ["bytes out", "Total bytes sent to the player"],
  ["late inputs", "Inputs that arrived after their tick ran (the previous input was used)"],
  ["input lead", "Ticks the newest input is ahead of the server (<= 0: late)"],
  ["connected", "Seconds since this session began"],
];

function fmt(v, digits) {
  if (v === null || v === undefined) return "-";
  return typeof v === "number" ? v.toFixed(digits) : String(v);
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(2) + " MiB";
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function stat(label, title) {
  const value = el("b");
  return { box: el("div", { class: "stat", title }, value, el("span", {}, label)), value };
}

function makeCard(name) {
  const title = el("h2");
  const what = el("span", { class: "what" });
  const link = el("a", { target: "_blank" }, "spectate");
  const stats = {
    tick: stat("tick", "The room's current tick"),
    players: stat("players", "Players connected / seats"),
    load: stat("load", "Seats taken, handed out or held for a player coming back"),
    tickTime: stat("tick ms p50 / p99 / CPU p99", "Work time per tick (wall), median / 99th percentile; then the 99th percentile of the CPU it used. A wall p99 far above the CPU p99 means the tick waited for a core (contention), not that it had more work"),
    late: stat("late ticks", "Ticks started more than one period after they were due"),
    dropped: stat("dropped ticks", "Ticks skipped after a stall"),
    kbps: stat("kbps in / out", "Room bandwidth, last second"),
    desyncs: stat("desyncs / drops", "Desynced clients / packets dropped and handshakes denied"),
  };
  const tickCanvas = el("canvas", { class: "chart" });
  const bwCanvas = el("canvas", { class: "chart" });
  const tickLegend = el("div", { class: "legend" }, "tick time (ms), last 2 min:", legend("#2a6fdb", "mean"), legend("#d9534f", "worst"), legend("#999", "budget"));
  const bwLegend = el("div", { class: "legend" }, "bandwidth (kbps), last 2 min:", legend("#2a9d5b", "in"), legend("#8a4fd8", "out"));
  const table = el("table");
  const head = el("tr");
  for (const [label, help, cls] of HEADERS) head.append(el("th", { title: help, class: cls || "" }, label));
  table.append(el("thead", {}, head));
  const tbody = el("tbody");
  table.append(tbody);
  const card = el(
    "section",
    { class: "room", "data-room": name },
    el("div", { class: "room-head" }, title, what, link),
    el("div", { class: "stats" }, ...Object.values(stats).map((s) => s.box)),
    el("div", { class: "charts" }, el("div", {}, tickLegend, tickCanvas), el("div", {}, bwLegend, bwCanvas)),
    table,
  );
  return { el: card, parts: { title, what, link, stats, tickCanvas, bwCanvas, tbody } };
}

function legend(color, label) {
  const frag = document.createDocumentFragment();
  frag.append(el("i", { style: `background:${color}` }), label);
  return frag;
}

// A line chart of several series over the same x (seconds ago); `budget` draws a dashed
// horizontal line. Scales to the device pixel ratio so it stays sharp.
function drawChart(canvas, xs, series, budget) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pad = { l: 44, r: 8, t: 8, b: 18 };
  let top = budget || 0;
  for (const s of series) for (const v of s.values) top = Math.max(top, v);
  top = top > 0 ? top * 1.15 : 1;
  const span = 120; // seconds on the x axis
  const now = xs.length ? xs[xs.length - 1] : 0;
  const X = (t) => pad.l + (w - pad.l - pad.r) * (1 - (now - t) / span);
  const Y = (v) => h - pad.b - (h - pad.t - pad.b) * (v / top);
  ctx.strokeStyle = "#e5e5e5";
  ctx.fillStyle = "#777";
  ctx.font = "10px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 3; i++) {
    const v = (top / 3) * i, y = Y(v);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    ctx.fillText(v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2), 4, y + 3);
  }
  ctx.fillText("-2 min", pad.l, h - 4);
  ctx.fillText("now", w - pad.r - 20, h - 4);
  if (budget) {
    ctx.strokeStyle = "#999";
    ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(pad.l, Y(budget)); ctx.lineTo(w - pad.r, Y(budget)); ctx.stroke();
    ctx.setLineDash([]);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.values.forEach((v, i) => (i ? ctx.lineTo(X(xs[i]), Y(v)) : ctx.moveTo(X(xs[i]), Y(v))));
    ctx.stroke();
  }
}

function playerRows(room, tbody, now) {
  tbody.replaceChildren();
  const players = room.players_detail || [];
  if (!players.length) {
    tbody.append(el("tr", {}, el("td", { class: "l none", colspan: HEADERS.length }, "no one connected")));
    return;
  }
  for (const p of players) {
    const key = room.name + "/" + (p.slot ?? "s") + "/" + p.user;
    const prev = lastBytes.get(key);
    let kin = null, kout = null;
    if (prev && now > prev.t) {
      kin = ((p.bytes_in - prev.inB) * 8) / 1000 / (now - prev.t);
      kout = ((p.bytes_out - prev.outB) * 8) / 1000 / (now - prev.t);
    }
    lastBytes.set(key, { t: now, inB: p.bytes_in, outB: p.bytes_out });
    const lead = p.input_lead_ticks;
    const cells = [
      [p.slot === null ? "spectator" : p.slot, "l"],
      [p.user || "-", "l"],
      [fmt(p.rtt_ms, 1)],
      [fmt(p.jitter_ms, 1)],
      [fmt(p.loss_pct, 1), p.loss_pct > 5 ? "bad" : p.loss_pct > 1 ? "warn" : ""],
      [fmt(kin, 1)],
      [fmt(kout, 1)],
      [bytes(p.bytes_in)],
      [bytes(p.bytes_out)],
      [p.late_inputs, p.late_inputs ? "warn" : ""],
      [lead === null ? "-" : lead, lead !== null && lead <= 0 ? "bad" : ""],
      [fmt(p.connected_s, 0) + " s"],
    ];
    tbody.append(el("tr", {}, ...cells.map(([text, cls]) => el("td", { class: cls || "" }, String(text)))));
  }
}

function drawRoom(room, now) {
  let card = cards.get(room.name);
  if (!card) {
    card = makeCard(room.name);
    cards.set(room.name, card);
    document.getElementById("rooms").append(card.el);
  }
  const p = card.parts, s = p.stats;
  p.title.textContent = room.name;
  p.what.textContent = `${room.game} ${room.game_version} · ${room.mode} · ${room.tick_rate} Hz · ${room.status}${room.temporary ? " · closes when empty" : ""}`;
  if (room.spectate) {
    p.link.href = room.spectate;
    p.link.textContent = "spectate";
    p.link.removeAttribute("title");
  } else {
    p.link.removeAttribute("href");
    p.link.textContent = room.mode === "statesync" ? "spectate: needs open join or open matchmaking" : "spectate: the browser view needs state sync";
  }
  const seats = room.seats || {};
  s.tick.value.textContent = room.tick;
  s.players.value.textContent = `${room.players}/${room.slots}` + (room.spectators ? ` +${room.spectators}` : "");
  s.load.value.textContent = seats.load === undefined ? "-" : Math.round(seats.load * 100) + "%";
  s.load.box.title = `playing ${seats.playing ?? 0}, handed out ${seats.pending ?? 0}, held for players coming back ${seats.reserved ?? 0}, free ${seats.free ?? 0}`;
  s.tickTime.value.textContent = `${fmt(room.tick_ms_p50, 2)} / ${fmt(room.tick_ms_p99, 2)} / ${fmt(room.cpu_ms_p99, 2)}`;
  s.late.value.textContent = room.late_ticks;
  s.dropped.value.textContent = room.dropped_ticks;
  s.dropped.value.className = room.dropped_ticks ? "warn" : "";
  s.kbps.value.textContent = `${fmt(room.kbps_in, 1)} / ${fmt(room.kbps_out, 1)}`;
  const drops = Object.values(room.drops || {}).reduce((a, b) => a + b, 0) + Object.values(room.denied || {}).reduce((a, b) => a + b, 0);
  s.desyncs.value.textContent = `${room.desyncs} / ${drops}`;
  s.desyncs.value.className = room.desyncs ? "bad" : "";
  s.desyncs.box.title = "drops by reason: " + (JSON.stringify(Object.assign({}, room.drops, room.denied)) || "{}");
  const h = room.history || [];
  const xs = h.map((r) => r[0]);
  drawChart(p.tickCanvas, xs, [
    { values: h.map((r) => r[1]), color: "#2a6fdb" },
    { values: h.map((r) => r[2]), color: "#d9534f" },
  ], 1000 / room.tick_rate);
  drawChart(p.bwCanvas, xs, [
    { values: h.map((r) => r[3]), color: "#2a9d5b" },
    { values: h.map((r) => r[4]), color: "#8a4fd8" },
  ], 0);
  playerRows(room, p.tbody, now);
}

async function refresh() {
  try {
    const res = await fetch("api/dashboard", { cache: "no-store" });
    const data = await res.json();
    const s = data.server, t = s.tokens || {};
    document.getElementById("meta").textContent =
      [s.udp, s.ws].filter(Boolean).join("  ·  ") +
      `  ·  up ${fmt(s.uptime_s, 0)} s  ·  ${data.rooms.length} room(s) of at most ${s.max_rooms}` +
      `  ·  games: ${(s.games || []).join(", ")}` +
      `  ·  tokens: matchmaking ${t.matchmaking}, minting ${t.mint_api}, open join ${t.open_join ? "on" : "off"}`;
    const now = s.uptime_s; // the server's clock: per-player rates from its own counters
    const seen = new Set();
    for (const room of data.rooms) {
      seen.add(room.name);
      drawRoom(room, now);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    if (!data.rooms.length && !document.querySelector("#rooms .none")) {
      document.getElementById("rooms").append(el("p", { class: "none" }, "no rooms yet: POST api/rooms or api/matchmake makes one"));
    } else if (data.rooms.length) {
      document.querySelectorAll("#rooms > p.none").forEach((e) => e.remove());
    }
    document.getElementById("err").textContent = "";
  } catch (e) {
    document.getElementById("err").textContent = "server unreachable (" + e + ")";
  }
}

refresh();
setInterval(refresh, POLL_MS);
