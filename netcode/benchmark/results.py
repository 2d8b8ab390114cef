"""What a ``ticksync bench`` run leaves behind: the JSON document, its Markdown table, and
the cell-by-cell comparison with an earlier run.

The JSON (``bench.json``) holds everything: ``machine`` (CPU model, cores, Python, numpy,
which compiled modules ran), ``command``, ``game``, ``plan``, ``cells`` (load cells and
throughput cells, each with a unique ``key``) and ``capacity`` per mode. The Markdown and
the comparison are read from it alone, so an old run's file can be compared or re-rendered.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "compare", "load", "machine", "markdown", "write_json"]

FORMAT = 1  # the JSON's "ticksync_bench" version: bump when a field changes meaning

#: Load-cell figures in the table and the comparison: (field, column title, format, lower is better).
LOAD_COLUMNS = [
    ("achieved_hz", "Hz got", "{:.1f}", False),
    ("tick_ms_p50", "tick p50 ms", "{:.2f}", True),
    ("tick_ms_p99", "p99", "{:.2f}", True),
    ("tick_ms_max", "max", "{:.2f}", True),
    ("late_ms_p99", "late p99 ms", "{:.2f}", True),
    ("cpu_pct", "CPU %", "{:.1f}", True),
    ("rss_mb", "RSS MB", "{:.0f}", True),
    ("down_bytes_per_client_s", "down B/s/client", "{:,.0f}", True),
    ("up_bytes_per_client_s", "up B/s/client", "{:,.0f}", True),
    ("loss_pct", "loss %", "{:.2f}", True),
    ("desyncs", "desyncs", "{:d}", True),
]


def machine() -> dict:
    """Where the run happened: enough to tell two machines (or sittings) apart."""
    from netcode import compiled

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "platform": platform.platform(terse=True),
        "compiled": compiled.status,
        # Other work on the machine moves every figure: the 1-minute load average at the start.
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False, default=_plain) + "\n")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


def load(path: str | os.PathLike) -> dict:
    """A bench JSON; ValueError with a one-line reason for anything else."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("ticksync_bench") != FORMAT or not isinstance(doc.get("cells"), list):
        raise ValueError(f"{path} is not a ticksync bench result (format {FORMAT})")
    return doc


def _fmt(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return fmt.format(int(v) if fmt == "{:d}" else v)


def machine_line(doc: dict) -> str:
    m = doc["machine"]
    load = m.get("load_average")
    return (f"{m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['implementation']} {m['python']}, "
            f"numpy {m['numpy']}, {m['platform']}" + (f"; load average {load:.1f} at the start" if load is not None else ""))


def markdown(doc: dict) -> str:
    """The run as Markdown: machine and command, the load matrix, capacity, throughput."""
    out = [
        f"Machine: {machine_line(doc)}.  ",
        f"Command: `{doc['command']}` ({doc['elapsed_s']:.0f} s), game {doc['game']}, "
        f"{doc['plan']['seconds']:g} s measured per cell over UDP on loopback.",
        "",
    ]
    load_cells = [c for c in doc["cells"] if c["kind"] == "load"]
    if load_cells:
        head = ["mode", "clients", "entities", "Hz"] + [title for _, title, _, _ in LOAD_COLUMNS]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for c in load_cells:
            row = [c["mode"], str(c["clients"]), str(c["entities"]), str(c["tick_rate"])]
            row += [_fmt(fmt, c.get(name)) for name, _, fmt, _ in LOAD_COLUMNS]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        for c in load_cells:
            missed = c.get("load_missed_updates", 0) / max(1.0, c["clients"] * c["tick_rate"] * c["seconds"])
            if missed > 0.01:  # the bots' process was starved: the server got less traffic than asked
                out.append(f"- {c['key']}: the load generator missed {100 * missed:.0f}% of the client updates "
                           "(CPU starved), so the server got less traffic than the cell asks.")
    for c in doc["cells"]:
        if c["kind"] in ("skipped", "failed"):
            out.append(f"- {c['key']}: {c['kind']}: {c['reason']}")
    if out[-1].startswith("- "):
        out.append("")
    if doc.get("capacity"):
        out.append("| capacity: mode | clients | p99 inside | limited by |")
        out.append("|---|---|---|---|")
        for mode, cap in doc["capacity"].items():
            npcs = "the game's entities" if cap["entities"] is None else f"{cap['entities']} NPCs"
            inside = f"{cap['budget_ms']:.1f} ms ({cap['tick_rate']} Hz, {npcs})"
            out.append(f"| {mode} | {cap['clients']} | {inside} | {cap['limit']} |")
        out.append("")
        out.append("(limited by: *tick budget*, the next count measured was over it; *game maximum*, the game "
                   "takes no more players; *untested above*, no larger count was measured.)")
        out.append("")
    extra = [c for c in doc["cells"] if c["kind"] == "throughput"]
    if extra:
        out.append("| throughput | figure |")
        out.append("|---|---|")
        for c in extra:
            out.append(f"| {c['label']} | {c['value']:,.1f} {c['unit']} |")
        out.append("")
    return "\n".join(out)


def _figures(cell: dict) -> list[tuple[str, float | None, bool]]:
    """(name, value, lower is better) of every comparable figure of a cell."""
    if cell["kind"] == "load":
        return [(name, cell.get(name), lower) for name, _, _, lower in LOAD_COLUMNS]
    if cell["kind"] == "throughput":
        return [(cell["unit"], cell.get("value"), cell["unit"].startswith(("us", "ms", "s/")))]
    return []  # skipped, failed: no figures


def compare(old: dict, new: dict) -> str:
    """Cell by cell, figure by figure: old -> new and the change in %, with a mark where it
    got worse by more than 10%. Cells in one run only are listed as such."""
    olds = {c["key"]: c for c in old["cells"]}
    news = {c["key"]: c for c in new["cells"]}
    lines = [f"comparison with {old.get('command', '?')} on {machine_line(old)}"]
    if old["machine"].get("cpu") != new["machine"].get("cpu"):
        lines.append("note: a different CPU model: the changes below are the machines' as much as the code's")
    lines.append(f"{'cell':<52} {'figure':<24} {'old':>12} {'new':>12} {'change':>8}")
    for key, c in news.items():
        o = olds.get(key)
        if o is None:
            lines.append(f"{key:<52} (new cell)")
            continue
        if c["kind"] != o["kind"]:
            lines.append(f"{key:<52} {o['kind']} -> {c['kind']}")
            continue
        for (name, v, lower), (_, ov, _) in zip(_figures(c), _figures(o)):
            if v is None or ov is None:
                continue
            if ov:
                pct = 100 * (v - ov) / abs(ov)
                worse = pct > 10 if lower else pct < -10
                change = f"{pct:+.1f}%" + (" !" if worse else "")
            else:
                change = "=" if v == ov else "new"
            lines.append(f"{key:<52} {name:<24} {ov:>12.4g} {v:>12.4g} {change:>8}")
    for key in olds.keys() - news.keys():
        lines.append(f"{key:<52} (not in this run)")
    return "\n".join(lines)
