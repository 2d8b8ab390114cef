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
