"""bench.bench_encode_budget: its rooms hold the encode budget they are given, and --seeds
averages over rooms (the figures of one room under loss swing with its packets' order)."""

from bench import bench_encode_budget


def test_the_budget_rows_never_encode_more_than_the_budget_and_seeds_average(capsys):
    argv = ["--clients", "4", "--seconds", "1", "--warmup", "0.5", "--jitter", "0.05", "--loss", "0.2", "--budget", "1"]
    bench_encode_budget.main(argv + ["--seeds", "2"])
    out = capsys.readouterr().out.splitlines()
    assert "seeds 1-2 averaged" in out[0]
    rows = [line.split() for line in out[2:]]
    assert [r[1] for r in rows] == ["off", "1", "1"]  # unbounded, budget on one tick, budget spread
    enc_max = [int(r[4] if r[2] == "1t" else r[3]) for r in rows[1:]]
    assert rows[0][6] == "0.0%" and enc_max == [1, 1], out
    assert all(0 <= float(r[-2]) < 60 for r in rows), out  # the clients' acks: a second old at most
    one = [bench_encode_budget.run_cell(4, 0.05, None, 1.0, 0.5, seed=s, loss=0.2)["bytes_per_client_s"] for s in (1, 2)]
    assert abs(float(rows[0][-1]) - sum(one) / 2) <= 0.5, (rows[0], one)  # the unbounded row's B/client/s: the rooms' mean
