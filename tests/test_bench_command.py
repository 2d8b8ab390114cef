"""``ticksync bench``: a tiny run (two cells of a second and a half over UDP loopback) whose
files have the right shape and whose numbers agree with each other; the capacity search's
bisection on made-up figures; --compare, --readme and the one-line errors.

What is asserted of the figures is what must hold on any machine, however slow or busy:
counts that must match (packets each way, ticks against the rate and the time), ranges a
figure cannot leave (CPU of one process, percentiles in order), and the traffic the
protocol's rates fix (a lockstep frame packet every 2nd tick, a snapshot every 2nd).
"""

from __future__ import annotations

import json
import os

import pytest

from netcode import cli
from netcode.benchmark import matrix, results
from netcode.benchmark.matrix import Cell, Plan, capacity_search
from netcode.benchmark.readme import BEGIN, END, replace_section
from netcode.session.wire import MAX_PACKET, UDP_IP_OVERHEAD

RATE = 30
CLIENTS = 3
TINY = ["--quick", "--modes", "lockstep,statesync", "--clients", str(CLIENTS), "--entities", "40",
        "--tick-rates", str(RATE), "--seconds", "1.5", "--warmup", "0.3", "--capacity-probes", "0"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = cli.main(["bench", *TINY, "--out", str(out)])
    assert code == 0
    return out, json.loads((out / "bench.json").read_text())


@pytest.mark.network
def test_a_tiny_run_writes_json_markdown_and_plots(tiny):
    out, doc = tiny
    assert doc["ticksync_bench"] == 1 and doc["game"].startswith("arena")
    assert doc["command"].startswith("ticksync bench --quick --modes lockstep,statesync --clients 3")
    m = doc["machine"]
    assert m["cores"] >= 1 and m["python"] and m["cpu"]
    loads = [c for c in doc["cells"] if c["kind"] == "load"]
    assert [c["mode"] for c in loads] == ["lockstep", "statesync"]
    keys = [c["key"] for c in doc["cells"]]
    assert len(keys) == len(set(keys))
    through = {c["key"]: c for c in doc["cells"] if c["kind"] == "throughput"}
    assert {"replay", "replay/verify", "codec/full/encode", "codec/delta/decode"} <= set(through)
    assert all(c["value"] > 0 for c in through.values())
    assert through["codec/full/encode"]["bytes_per_packet"] <= MAX_PACKET

    md = (out / "bench.md").read_text()
    for c in loads:
        assert f"| {c['mode']} | {CLIENTS} | {c['entities']} | {RATE} |" in md
    assert "Machine:" in md and doc["command"] in md
    for name in ("tick_time.png", "cpu.png", "bytes_per_client.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


@pytest.mark.network
def test_the_tiny_run_figures_agree_with_each_other(tiny):
    _, doc = tiny
    cores = doc["machine"]["cores"]
    for c in (c for c in doc["cells"] if c["kind"] == "load"):
        where = c["key"]
        assert c["players"] == CLIENTS and c["entities"] == 40 + CLIENTS, where
        assert c["ticks"] > 0, where
        assert 0.5 * RATE < c["achieved_hz"] <= 1.1 * RATE, where
        assert abs(c["ticks"] - c["achieved_hz"] * c["seconds"]) < 1, where
        assert 0 < c["tick_ms_p50"] <= c["tick_ms_p99"] <= c["tick_ms_max"], where
        assert 0 <= c["late_ms_p50"] <= c["late_ms_p99"] <= c["late_ms_max"], where
        assert 0 < c["cpu_pct"] <= 100 * cores and c["cpu_user_pct"] + c["cpu_sys_pct"] == pytest.approx(c["cpu_pct"]), where
        assert 10 < c["rss_mb"] < 10_000, where
        # Bytes and packets: every datagram carries 28 bytes of headers and at most one packet.
        for way in ("down", "up"):
            pkts, nbytes = c[f"{way}_packets_per_client_s"], c[f"{way}_bytes_per_client_s"]
            assert pkts > 0, (where, way)
            assert (UDP_IP_OVERHEAD + 10) * pkts < nbytes <= (UDP_IP_OVERHEAD + MAX_PACKET) * pkts, (where, way)
        # What the server sent, the clients received (loopback, no loss), give or take the
        # packets in flight when the two processes' windows closed.
        sent, got = c["server_sent_packets"], c["clients_received_packets"]
        assert 0.9 * sent <= got <= 1.1 * sent, where
        assert 0.9 * c["clients_sent_packets"] <= c["server_received_packets"] <= 1.1 * c["clients_sent_packets"], where
        per_client = c["server_sent_bytes"] / CLIENTS / c["seconds"]
        assert c["down_bytes_per_client_s"] == pytest.approx(per_client, rel=0.1), where
        # The protocol's rates: a packet to each client every 2nd tick (lockstep frames with
        # send_every=2; snapshots at half the tick rate); state-sync inputs every tick.
        assert c["down_packets_per_client_s"] == pytest.approx(RATE / 2, rel=0.2), where
        if c["mode"] == "statesync":
            assert c["up_packets_per_client_s"] == pytest.approx(RATE, rel=0.2), where
        assert 0 <= c["loss_pct"] <= 1 and c["desyncs"] == 0, where
    for mode, cap in doc["capacity"].items():
        (cell,) = [c for c in doc["cells"] if c["kind"] == "load" and c["mode"] == mode]
        assert cap["clients"] == (CLIENTS if cell["tick_ms_p99"] <= 1000 / RATE else 0)
        assert cap["probes"] == []


@pytest.mark.network
def test_compare_and_readme_from_a_saved_run(tiny, tmp_path, capsys):
    out, doc = tiny
    old = dict(doc, cells=[dict(c) for c in doc["cells"]])
    lock = next(c for c in old["cells"] if c["key"].startswith("lockstep/"))
    lock["cpu_pct"] = doc_cpu = next(c for c in doc["cells"] if c["key"] == lock["key"])["cpu_pct"] * 2
    old["cells"].append({"kind": "throughput", "key": "gone", "label": "gone", "value": 1.0, "unit": "x"})
    (tmp_path / "old.json").write_text(json.dumps(old))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nstale table\n{END}\nafter\n")
    capsys.readouterr()
    code = cli.main(["bench", "--from", str(out / "bench.json"), "--compare", str(tmp_path / "old.json"),
                     "--readme", str(readme), "--out", str(tmp_path / "again")])
    assert code == 0
    text = capsys.readouterr().out
    line = next(l for l in text.splitlines() if l.startswith(lock["key"]) and " cpu_pct " in l)
    assert "-50.0%" in line and f"{doc_cpu:.4g}" in line
    assert "gone" in text and "(not in this run)" in text
    new = readme.read_text()
    assert new.startswith("# title\n\nbefore\n" + BEGIN) and new.endswith(END + "\nafter\n")
    assert "stale table" not in new and doc["command"] in new and "| lockstep | 3 |" in new
    assert (tmp_path / "again" / "bench.json").exists()


def test_replace_section_needs_both_markers_in_order():
    assert replace_section(f"a\n{BEGIN}\nx\n{END}\nb\n", "new\n") == f"a\n{BEGIN}\nnew\n{END}\nb\n"
    for text in ("no markers\n", f"{END}\n{BEGIN}\n", f"{BEGIN}\n{BEGIN}\n{END}\n"):
        with pytest.raises(ValueError):
            replace_section(text, "x")


def _fake_figures(p99_per_client: float):
    """A stand-in for a loopback run: p99 grows linearly with the clients."""
    def measure(cell: Cell) -> dict:
        return {"kind": "load", "key": cell.key, "mode": cell.mode, "clients": cell.clients, "tick_rate": cell.tick_rate,
                "tick_ms_p99": p99_per_client * cell.clients, "budget_ms": cell.budget_ms}
    return measure


def test_capacity_search_bisects_between_the_matrix_cells():
    class Game:
        max_players = 256

    plan = Plan(modes=("lockstep",), clients=(8, 64, 200), entities=(1000,), tick_rates=(60,), capacity_probes=3)
    measure = _fake_figures(0.2)  # 16.7 ms at 83 clients
    matrix_cells = [measure(c) for c in plan.cells(Game())]
    cap = capacity_search(Game(), plan, matrix_cells, measure)["lockstep"]
    assert [p["clients"] for p in cap["probes"]] == [132, 98, 81]  # bisecting (64, 200)
    assert cap["clients"] == 81 and cap["first_over"] == 98 and cap["limit"] == "tick budget"
    # Everything fits: the game's maximum is tried, and is the answer.
    cap = capacity_search(Game(), plan, [_fake_figures(0.01)(c) for c in plan.cells(Game())], _fake_figures(0.01))["lockstep"]
    assert [p["clients"] for p in cap["probes"]] == [256] and cap["clients"] == 256 and cap["limit"] == "game maximum"
    # The mode refuses more than 150 players (a lockstep frame over one packet): that bounds it.
    def refuses_over_150(cell: Cell) -> dict:
        if cell.clients > 150:
            return {"kind": "skipped", "key": cell.key, "mode": cell.mode, "clients": cell.clients,
                    "tick_rate": cell.tick_rate, "reason": "over the packet budget"}
        return _fake_figures(0.01)(cell)

    cap = capacity_search(Game(), plan, [refuses_over_150(c) for c in plan.cells(Game())], refuses_over_150)["lockstep"]
    assert [p["clients"] for p in cap["probes"]] == [132, 166, 149] and cap["clients"] == 149
    assert cap["limit"] == "the mode refuses 166: over the packet budget"
    # Nothing fits, not even one client (20 ms each).
    cap = capacity_search(Game(), plan, [_fake_figures(20)(c) for c in plan.cells(Game())], _fake_figures(20))["lockstep"]
    assert [p["clients"] for p in cap["probes"]] == [4, 2, 1] and cap["clients"] == 0 and cap["limit"] == "none fits"


def test_a_cell_the_mode_refuses_is_skipped_and_a_dead_run_is_failed():
    game = matrix.resolve_game(None)
    plan = matrix.PLANS["quick"]

    def never(spec):
        raise AssertionError("a refused configuration must not start processes")

    # 200 players' 5-byte inputs do not fit one lockstep frame packet: refused before running.
    cell = matrix.measure_cell(game, Cell("lockstep", 200, 10, 60), plan, runner=never)
    assert cell["kind"] == "skipped" and "packet budget" in cell["reason"]

    def dies(spec):
        raise RuntimeError("server died (exit code 1) while waiting for 'port'")

    cell = matrix.measure_cell(game, Cell("statesync", 2, 10, 60), plan, runner=dies)
    assert cell["kind"] == "failed" and "server died" in cell["reason"]
    doc = {"machine": {"cpu": "x", "cores": 1, "usable_cores": 1, "implementation": "CPython", "python": "3",
                       "numpy": "2", "platform": "p"}, "command": "c", "elapsed_s": 1.0, "game": "g",
           "plan": {"seconds": 1.0}, "cells": [cell], "capacity": {}}
    assert f"- {cell['key']}: failed: RuntimeError: server died" in results.markdown(doc)
    assert not matrix.fits(cell)


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "junk.json").write_text("[1, 2]")
    for argv, words in (
        (["bench", "--compare", str(tmp_path / "missing.json")], "cannot read"),
        (["bench", "--from", str(tmp_path / "junk.json")], "not a ticksync bench result"),
        (["bench", "demos.swarm", "--entities", "100"], "no entity count"),
        (["bench", "no_such_game_module"], "no game module"),
        (["bench", "--seconds", "0"], "--seconds"),
    ):
        capsys.readouterr()
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, (argv, err)
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--modes", "carrier-pigeon"])
    assert exc.value.code == 2
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if not installed
    capsys.readouterr()
    assert cli.main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ticksync[bench]'" in err and len(err.strip().splitlines()) == 1


def test_the_arena_is_benched_with_room_for_256_players():
    game = matrix.resolve_game(None)
    assert game.max_players == 256 and game.describe().startswith("arena")
    assert matrix.game_with_entities(game, 50).npcs == 50
    assert os.path.basename(matrix.DEFAULT_GAME) == "demos.arena"


def test_a_client_count_over_the_games_maximum_plays_the_maximum():
    pong = matrix.resolve_game("demos.pong")
    cells = Plan(modes=("statesync",), clients=(1, 8, 64), entities=(None,), tick_rates=(60,)).cells(pong)
    assert [c.clients for c in cells] == [1, 2]
