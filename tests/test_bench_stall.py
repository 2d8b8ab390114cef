"""bench.bench_stall: the stall bench runs the real client and server, and its figures are
what happened (on a clean path the stalled client's deltas were held and it caught up; on
a lossy one they were not held)."""

import pytest

from bench import bench_stall


def test_a_clean_paths_stall_is_held_a_lossy_ones_is_not_and_the_table_prints_a_row_per_path(capsys):
    clean = bench_stall.row("clean", seeds=1, clients=2, npcs=200, warmup=2.0, stalls=1, stall=0.6, gap=1.0)
    assert clean["held"] == 1  # its one stall
    # Held, some deltas still went; the client was current within a second after (its lag
    # over the gap after the stall below 60 ticks: the stall itself is 36).
    assert clean["kb_per_stall"] > 0 and clean["lag_max"] < 60
    lossy = bench_stall.row("loss20", seeds=1, clients=2, npcs=200, warmup=2.0, stalls=1, stall=0.6, gap=1.0)
    assert lossy["held"] == 0 and lossy["kb_per_stall"] > clean["kb_per_stall"]  # deltas went on
    bench_stall.main(["--paths", "clean,loss20", "--seeds", "1", "--stalls", "1", "--clients", "2", "--npcs", "100", "--warmup", "1.5", "--gap", "0.5"])
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.lstrip().startswith(("clean", "loss20"))]
    assert len(rows) == 2 and "1/1" in rows[0] and "0/1" in rows[1], out


def test_an_unknown_path_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        bench_stall.main(["--paths", "wifi"])
    err = capsys.readouterr().err
    assert "unknown path 'wifi'" in err and "jitter100" in err
