"""Small games built only on ticksync's public API, each usable by tests, benches and bots."""
