// Smoke test of the arena page's script (netcode/server/web/arena.js) without a browser: just
// enough of a DOM (elements, a canvas context that counts its calls, events, animation
// frames) for the page to join, connect, take keys and the mouse, and draw for a while.
//
//   node --experimental-websocket tests/web/page.mjs --http http://127.0.0.1:PORT/ [--seconds 2]
//
// It holds D (move right), points the mouse straight below the player, holds the button,
// and prints one JSON line: the HUD, scores and message text, the canvas calls per kind,
// and any error the page threw; then plays on until its stdin closes, so that
// tests/test_web_client.py can check the server saw the inputs while they still apply.

const args = { seconds: "2" };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const errors = [];
process.on("uncaughtException", (e) => errors.push(String(e.stack || e)));
process.on("unhandledRejection", (e) => errors.push(String(e.stack || e)));

const calls = {};
const context = new Proxy({}, {
  get: (_, name) => (name === "setTransform" || typeof name !== "string" ? () => {} : (...a) => { calls[name] = (calls[name] || 0) + 1; }),
  set: () => true,
});

function element(id) {
  const handlers = {};
  return {
    id, textContent: "", className: "", width: 0, height: 0, handlers,
    getContext: () => context,
    addEventListener: (type, fn) => { (handlers[type] ||= []).push(fn); },
  };
}
const elements = Object.fromEntries(["view", "hud", "scores", "help", "message"].map((id) => [id, element(id)]));
const windowHandlers = {};
const fire = (handlers, type, ev) => (handlers[type] || []).forEach((fn) => fn({ preventDefault() {}, ...ev }));
const nodeFetch = globalThis.fetch;

Object.assign(globalThis, {
  location: new URL("play?room=default", args.http),
  document: { getElementById: (id) => elements[id] },
  innerWidth: 1280, innerHeight: 720, devicePixelRatio: 1,
  addEventListener: (type, fn) => { (windowHandlers[type] ||= []).push(fn); },
  requestAnimationFrame: (fn) => setTimeout(() => fn(performance.now()), 16),
  fetch: (url, opts) => nodeFetch(new URL(url, globalThis.location.href), opts), // a page resolves against itself
});

await import("../../netcode/server/web/arena.js");
const sleep = (s) => new Promise((ok) => setTimeout(ok, s * 1000));
for (let i = 0; i < 100 && !elements.hud.textContent.includes("playing"); i++) await sleep(0.05);
fire(windowHandlers, "keydown", { code: "KeyD" });
fire(elements.view.handlers, "mousemove", { clientX: 640, clientY: 360 + 200 }); // the player is drawn mid-screen
fire(elements.view.handlers, "mousedown", { button: 0 });
await sleep(Number(args.seconds));
const frameCalls = { ...calls };
process.stdout.write(JSON.stringify({
  hud: elements.hud.textContent, scores: elements.scores.textContent, message: elements.message.textContent, calls: frameCalls, errors,
}) + "\n");
// The test samples the server while we still play, then closes our stdin: only then leave
// (a leaver's input is neutral, which would race the sample).
await new Promise((ok) => { process.stdin.once("end", ok); process.stdin.resume(); });
await sleep(0.3);
process.stdout.write(JSON.stringify({ message: elements.message.textContent }) + "\n"); // (after a server stop: "server gone")
fire(windowHandlers, "pagehide", {});
await sleep(0.2);
process.exit(0);
