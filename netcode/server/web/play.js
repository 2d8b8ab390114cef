// play.js: play.html's loader. Reads the room's schema and imports the renderer the game
// names (its visuals' web_renderer, a file in this folder: the arena's arena.js) or the
// generic one that draws any game from its visuals (render.js). The renderer does the rest.

import { fetchSchema } from "./ticksync.js";
import { message, roomName } from "./page.js";

async function load() {
  let renderer = "render.js";
  try {
    const schema = await fetchSchema(roomName, location.href);
    renderer = schema.json.visuals?.web_renderer || renderer;
  } catch (err) {
    // No schema (no such room, no replication): the generic renderer says why when it joins.
  }
  await import(`./${renderer}`);
}

load().catch((err) => message(String(err.message || err), true));
