"""The PNG plots of a ``ticksync bench`` run (matplotlib, Agg backend: no display needed).

Against the client count, one line per mode (and per entity count and tick rate when the
run varied them): p99 tick time with the tick budget, server CPU, and bytes per client
per second each way. Drawn from the JSON document alone.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

__all__ = ["plot"]


def _series(doc: dict) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in doc["cells"]:
        if c["kind"] == "load":
            groups[(c["mode"], c.get("npcs"), c["tick_rate"])].append(c)
    return {k: sorted(v, key=lambda c: c["clients"]) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def _label(key: tuple, varied: bool) -> str:
    mode, npcs, rate = key
    return f"{mode}, {'the game' if npcs is None else f'{npcs} NPCs'}, {rate} Hz" if varied else mode


def plot(doc: dict, out: Path) -> list[Path]:
    """Write the plots into ``out``; returns their paths ([] when there are no load cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(doc)
    if not series:
        return []
    varied = len({k[1:] for k in series}) > 1
    title = f"{doc['game']} over UDP loopback"
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, cells in series.items():
        ax.plot([c["clients"] for c in cells], [c["tick_ms_p99"] for c in cells], marker="o", label=_label(key, varied))
    for rate in sorted({k[2] for k in series}):
        ax.axhline(1000 / rate, linestyle="--", linewidth=0.8, color="grey")
        ax.annotate(f"budget at {rate} Hz", (0, 1000 / rate), xycoords=("axes fraction", "data"), fontsize=7, color="grey")
    ax.set(xlabel="clients", ylabel="server tick time p99 (ms)", title=f"tick time, {title}")
    ax.legend(fontsize=8)
    save(fig, "tick_time.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, cells in series.items():
        ax.plot([c["clients"] for c in cells], [c["cpu_pct"] for c in cells], marker="o", label=_label(key, varied))
    ax.set(xlabel="clients", ylabel="server CPU (% of one core)", title=f"server CPU, {title}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    save(fig, "cpu.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, cells in series.items():
        xs = [c["clients"] for c in cells]
        line, = ax.plot(xs, [c["down_bytes_per_client_s"] / 1e3 for c in cells], marker="o", label=f"{_label(key, varied)}: down")
        ax.plot(xs, [c["up_bytes_per_client_s"] / 1e3 for c in cells], marker="x", linestyle=":", color=line.get_color(),
                label=f"{_label(key, varied)}: up")
    ax.set(xlabel="clients", ylabel="kB/s per client (incl. UDP/IP headers)", title=f"bytes per client, {title}")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    save(fig, "bytes_per_client.png")
    return written
