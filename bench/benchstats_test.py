"""Tests of bench/benchstats.py (CTest: bench_benchstats).

  python3 -m unittest discover -s bench -p 'benchstats_test.py'
"""

import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import benchstats as bs


def binomial_cdf(n: int, k: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2), summed directly."""
    return sum(math.comb(n, j) for j in range(k + 1)) / 2**n


class MedianIntervalRanks(unittest.TestCase):
    def test_published_ranks(self):
        # Ranks from the usual tables of the sign-test interval for the median at 95%.
        self.assertEqual(bs.median_interval_ranks(6)[:2], (1, 6))
        self.assertEqual(bs.median_interval_ranks(10)[:2], (2, 9))
        self.assertEqual(bs.median_interval_ranks(20)[:2], (6, 15))
        self.assertAlmostEqual(bs.median_interval_ranks(10)[2], 1 - 2 * 11 / 1024)

    def test_too_few_rounds_have_no_interval(self):
        for n in range(0, 6):
            self.assertIsNone(bs.median_interval_ranks(n), n)

    def test_widest_k_that_keeps_the_confidence(self):
        for n in range(6, 60):
            lo, hi, coverage = bs.median_interval_ranks(n)
            self.assertEqual(hi, n + 1 - lo)
            self.assertAlmostEqual(coverage, 1 - 2 * binomial_cdf(n, lo - 1))
            self.assertGreaterEqual(coverage, bs.CONFIDENCE)
            # One rank narrower would fall below the confidence.
            self.assertLess(1 - 2 * binomial_cdf(n, lo), bs.CONFIDENCE, n)

    def test_coverage_holds_by_simulation(self):
        rng = random.Random(13)
        n, trials, hits = 10, 4000, 0
        lo, hi, coverage = bs.median_interval_ranks(n)
        for _ in range(trials):
            xs = sorted(rng.lognormvariate(0, 1) for _ in range(n))  # true median 1
            hits += xs[lo - 1] <= 1 <= xs[hi - 1]
        self.assertAlmostEqual(hits / trials, coverage, delta=0.015)


class Summaries(unittest.TestCase):
    def test_ten_rounds(self):
        ratios = [1.0, 0.9, 1.4, 0.7, 1.1, 1.2, 0.8, 1.3, 2.0, 0.5]
        s = bs.summarize_ratios(ratios)
        self.assertAlmostEqual(s.median, 1.05)
        self.assertEqual((s.lo, s.hi), (0.7, 1.4))  # 2nd and 9th smallest
        self.assertEqual(s.ratios, tuple(ratios))

    def test_few_rounds_give_a_median_without_interval(self):
        s = bs.summarize_ratios([1.0, 2.0, 3.0])
        self.assertEqual(s.median, 2.0)
        self.assertIsNone(s.lo)
        self.assertIsNone(s.hi)
        self.assertEqual(bs.verdict(s, 10.0), bs.UNDECIDED)

    def test_empty(self):
        s = bs.summarize_ratios([])
        self.assertIsNone(s.median)
        self.assertEqual(bs.verdict(s, 1.0), bs.UNDECIDED)

    def test_rounds_missing_a_side_are_left_out(self):
        self.assertEqual(bs.per_round_ratios([2.0, None, 9.0, 4.0], [1.0, 5.0, None, 8.0]),
                         [2.0, 0.5])


class Verdicts(unittest.TestCase):
    def summary(self, lo, hi):
        return bs.RatioSummary((lo, hi), (lo + hi) / 2, lo, hi, 0.98)

    def test_pass_needs_the_whole_interval_within_the_target(self):
        self.assertEqual(bs.verdict(self.summary(0.5, 1.0), 1.0), bs.PASS)
        self.assertEqual(bs.verdict(self.summary(0.5, 1.01), 1.0), bs.UNDECIDED)

    def test_fail_needs_the_whole_interval_beyond_the_target(self):
        self.assertEqual(bs.verdict(self.summary(1.01, 3.0), 1.0), bs.FAIL)
        self.assertEqual(bs.verdict(self.summary(1.0, 3.0), 1.0), bs.UNDECIDED)

    def test_median_alone_decides_nothing(self):
        # Median 0.8 meets the target, but the interval reaches past it.
        s = bs.summarize_ratios([0.6, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.85, 1.2, 1.3])
        self.assertLessEqual(s.median, 1.0)
        self.assertEqual(bs.verdict(s, 1.0), bs.UNDECIDED)


class Versus(unittest.TestCase):
    def test_ratio_of_two_rows_in_the_same_round(self):
        rows = {"coro": [100.0, 90.0, 120.0, 80.0, 100.0, 110.0, 95.0, 105.0, 100.0, 90.0],
                "asio": [400.0, 300.0, 300.0, 400.0, 250.0, 220.0, 380.0, 350.0, 400.0, 300.0]}
        got = bs.versus(rows, {"coro": ("asio", 0.5)})
        ratios = [c / a for c, a in zip(rows["coro"], rows["asio"])]
        self.assertEqual(list(got), ["coro"])
        self.assertEqual(got["coro"]["against"], "asio")
        self.assertEqual(got["coro"]["limit"], 0.5)
        self.assertEqual(got["coro"]["ratio"]["ratios"], ratios)
        self.assertAlmostEqual(got["coro"]["ratio"]["median"], statistics.median(ratios))
        self.assertEqual(got["coro"]["ratio"]["ci_high"], sorted(ratios)[8])  # 9th of 10
        self.assertEqual(got["coro"]["verdict"], bs.PASS)  # the highest ratio is exactly 0.5

    def test_verdict_follows_the_interval(self):
        slow = {"coro": [300.0] * 10, "asio": [400.0] * 10}  # 0.75 every round
        self.assertEqual(bs.versus(slow, {"coro": ("asio", 0.5)})["coro"]["verdict"], bs.FAIL)

    def test_rounds_missing_a_side_are_left_out(self):
        rows = {"coro": [1.0, None, 3.0], "asio": [2.0, 2.0, None]}
        got = bs.versus(rows, {"coro": ("asio", 1.0)})["coro"]
        self.assertEqual(got["ratio"]["ratios"], [0.5])
        self.assertEqual(got["verdict"], bs.UNDECIDED)  # one round: no interval

    def test_pairs_missing_a_row_are_left_out(self):
        self.assertEqual(bs.versus({"coro": [1.0]}, {"coro": ("asio", 0.5)}), {})
        self.assertEqual(bs.versus({"asio": [1.0]}, {"coro": ("asio", 0.5)}), {})


class CompareReport(unittest.TestCase):
    """bench/compare --report reprints the table of a saved run, of either kind."""

    def report(self, data: dict) -> str:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "results.json"
            path.write_text(json.dumps(data))
            done = subprocess.run([sys.executable, "compare", "--report", str(path)],
                                  capture_output=True, text=True, check=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_a_run_against_a_baseline_build(self):
        out = self.report({"baseline": "/elsewhere/bench", "rounds": 10, "workloads": {
            "spsc_cap1": {"baseline": [100.0 + k for k in range(10)],
                          "custody": [60.0 + k for k in range(10)]},
            "select2_cap1024": {"baseline": [50.0] * 10, "custody": [50.0] * 10}}})
        self.assertIn("baseline /elsewhere/bench", out)
        self.assertRegex(out, r"spsc_cap1 +104\.5 +64\.5 +0\.6\d \(.*\) +faster")
        self.assertRegex(out, r"select2_cap1024 .* +same")


class Ordinals(unittest.TestCase):
    def test_suffixes(self):
        got = [bs.ordinal(k) for k in (1, 2, 3, 4, 9, 11, 12, 13, 14, 21, 22, 23, 27, 101, 111)]
        self.assertEqual(got, ["1st", "2nd", "3rd", "4th", "9th", "11th", "12th", "13th", "14th",
                               "21st", "22nd", "23rd", "27th", "101st", "111th"])


if __name__ == "__main__":
    unittest.main()
