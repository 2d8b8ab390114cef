"""bench/compare_checkouts.py's arithmetic: ratios are taken round by round (the runs of a
round are adjacent in time), and a failed run drops its round, not the pairing."""

import pytest

from bench.compare_checkouts import paired_ratios


def test_ratios_pair_the_runs_of_each_round_so_drift_between_rounds_cancels():
    # The machine slows down by half over the sitting; the second checkout is 0.8x throughout.
    before = [10.0, 12.0, 15.0]
    after = [8.0, 9.6, 12.0]
    assert paired_ratios(before, after) == pytest.approx([0.8, 0.8, 0.8])


def test_a_failed_run_drops_its_round_and_keeps_the_others_paired():
    assert paired_ratios([10.0, None, 20.0, 10.0], [5.0, 7.0, None, 9.0]) == [0.5, 0.9]


NEW = """\
row                s tick p50    p99    max step p50    p99 recv p50    p99    max t+r p99   cpu cpu ms/s down kbps pkt/s up kbps wall s
swarm 256 fake    20    1.115  2.000   2.21    0.550  0.943    0.600  1.065   1.74   2.972 3.210    114.1     21.07  30.0   22.08   22.2
"""
OLD = """\
row                s tick p50    p99    max step p50    p99 recv p50    p99    max t+r p99 cpu ms/s down kbps pkt/s up kbps wall s
swarm 256 fake    20    2.115  3.000   3.21    1.550  1.943    1.600  2.065   2.74  12.419    512.1     17.14  30.0   22.08   22.2
"""


def test_lockstep_figures_are_read_under_their_header_in_old_and_new_tables():
    """3aaeb46's table has no cpu (p99) column: its cpu ms/s must not be read as the cpu
    p99, nor its down kbps as the cpu ms/s (what reading by position did)."""
    from bench.compare_checkouts import _lockstep_figures

    assert _lockstep_figures(NEW) == {"swarm 256 fake t+r p99 ms": 2.972, "cpu p99 ms": 3.21, "cpu ms/s": 114.1}
    assert _lockstep_figures(OLD) == {"swarm 256 fake t+r p99 ms": 12.419, "cpu ms/s": 512.1}


STATESYNC = """\
row               ents snap p50    p99    max other p50   p99 step p50 recv p50   p99 t+r p99 cpu ms/s enc/snap down kbps pkt/s up kbps JSON kbps JSON x wall s
noshare m10 64    1064     9.62  17.85  18.22      0.19  0.26     0.11     0.23  0.36   17.69    334.6    64.00     123.0  30.0    39.9     14442  117.4    1.3
budget6k m100 64  1064    10.74  17.14  17.41      0.21  0.31     0.12     0.25  0.39   17.12    378.3    64.00      37.3  30.0    39.9     14439  387.0    1.4

  noshare m10 64: 1.5 s, 90 ticks; snapshot parts per client 1.00; full snapshots 64
"""


def test_statesync_figures_are_read_per_row_with_the_snapshot_ticks_p99_not_the_others():
    from bench.compare_checkouts import _statesync_figures

    assert _statesync_figures(STATESYNC) == {
        "noshare m10 64 snap p50 ms": 9.62, "noshare m10 64 snap p99 ms": 17.85, "noshare m10 64 cpu ms/s": 334.6,
        "budget6k m100 64 snap p50 ms": 10.74, "budget6k m100 64 snap p99 ms": 17.14, "budget6k m100 64 cpu ms/s": 378.3,
    }
    assert _statesync_figures("no table here\n") is None
