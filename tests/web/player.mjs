// End-to-end harness: netcode/server/web/ticksync.js as a real player over a real WebSocket.
//
//   node --experimental-websocket tests/web/player.mjs --http http://127.0.0.1:PORT/ \
//        [--room default] [--seconds 3] [--move 127,0] [--spectator] [--token TEXT]
//
// Does what the browser page does (POST api/join, GET the room's schema, connect, hold an
// input) with no page (or, with --token, skips the join), then prints one JSON line for tests/test_web_client.py: the session's
// events and stats, the own entity's position over time, and the newest complete snapshot's
// codes and view, which the test compares with the server's own history for that tick.
// It prints before it disconnects, so the server still holds that tick when the test looks.
// Exit code 0 when it connected and played, 1 otherwise (the JSON says why).

import { fetchSchema, StateSyncClient } from "../../netcode/server/web/ticksync.js";

const args = { room: "default", seconds: "3", move: "0,0", spectator: false };
for (let i = 2; i < process.argv.length; i++) {
  const key = process.argv[i].replace(/^--/, "");
  if (key === "spectator") args.spectator = true;
  else args[key] = process.argv[++i];
}
const sleep = (s) => new Promise((ok) => setTimeout(ok, s * 1000));
const out = { events: [], own: [] };

function finish(code) {
  process.stdout.write(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
  return code;
}

async function main() {
  if (args.token) {
    out.join = { token: args.token }; // a token given: no join
  } else {
    const res = await fetch(new URL("api/join", args.http), {
      method: "POST",
      body: JSON.stringify({ room: args.room, spectator: args.spectator }),
    });
    out.join = await res.json();
    if (!res.ok) return finish(1);
  }
  const schema = await fetchSchema(args.room, args.http);
  const url = new URL(schema.json.ws_path, args.http);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const client = new StateSyncClient({ url: url.href, token: out.join.token, schema, onEvent: (e) => out.events.push(e) });
  client.setInput({ move: args.move.split(",").map(Number) });
  client.connect();
  for (let waited = 0; client.status !== "connected"; waited += 0.05) {
    if (waited > 5 || ["denied", "failed", "disconnected"].includes(client.status)) {
      out.stats = client.stats();
      out.status = client.status;
      return finish(1);
    }
    await sleep(0.05);
  }
  const end = performance.now() / 1000 + Number(args.seconds);
  while (performance.now() / 1000 < end && client.connected) {
    await sleep(0.1);
    const own = client.ownEntity;
    if (own !== null && client.latest) {
      out.own.push({ tick: client.latest.tick, pos: schema.values(client.latest.codes, schema.position, own) });
    }
  }
  const latest = client.latest;
  const view = client.view();
  out.stats = client.stats();
  out.slot = client.slot;
  out.status = client.status;
  out.latest = latest && {
    tick: latest.tick,
    codes: Array.from(latest.codes),
    view: Array.from(latest.view),
    extras: schema.decodeExtras(latest.extras),
  };
  out.view = view && { tick: view.tick, visible: view.visible.reduce((a, b) => a + b, 0) };
  const ok = client.connected && latest !== null;
  finish(ok ? 0 : 1); // before the goodbye: the server still has this tick in its history
  client.close("harness done");
  await sleep(0.2);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    out.error = String(err && err.stack ? err.stack : err);
    process.exit(finish(1));
  },
);
