"""bench.bench_join: the join-time bench runs the real client and server, and its figures
are what happened (every client connected before it joined, the counts add up)."""

from bench import bench_join


def test_every_client_connects_then_joins_and_the_table_prints_a_row_per_loss(capsys):
    r = bench_join.row(0.2, seeds=1, clients=3, npcs=200, latency=0.02, seconds=2.0)
    assert r["never_connected"] == 0 and r["never_joined"] == 0
    assert (r["joined"] > r["connected"]).all() and (r["connected"] >= 0.04).all()  # a handshake is two round trips
    assert r["bytes_per_client"] > 0
    bench_join.main(["--loss", "0,0.2", "--seeds", "1", "--clients", "2", "--npcs", "100", "--seconds", "1"])
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.lstrip().startswith(("0%", "20%"))]
    assert len(rows) == 2 and all(" 0 " in line.split("|")[3][:8] for line in rows), out
