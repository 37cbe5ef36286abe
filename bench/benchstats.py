"""Statistics of bench/compare: the median of per-round ratios, a distribution-free confidence
interval for it, and the verdict against a target.

Each round yields one ratio per workload (custody ns/op over Go ns/op, or over a floor workload's
ns/op, both from the same round). The rounds are taken as independent draws of that ratio; no
shape of its distribution is assumed. The interval for the median is the pair of order statistics
r(k) <= median <= r(n+1-k) with the largest k whose coverage, 1 - 2 P(B <= k-1) for B ~
Binomial(n, 1/2), is still at least the confidence asked for. With 10 rounds that is r(2)..r(9),
covering 97.9%; fewer than 6 rounds admit no 95% interval at all.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

CONFIDENCE = 0.95


def median_interval_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """1-based ranks (lo, hi) of the order statistics bounding the median of n draws with at
    least `confidence`, and their exact coverage; None when n draws admit no such interval."""
    if n < 1 or not 0 < confidence < 1:
        return None
    best = None
    tail = 0.0  # P(B <= k - 1)
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n
        coverage = 1 - 2 * tail
        if coverage < confidence:
            break
        best = (k, n + 1 - k, coverage)
    return best


def ordinal(k: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st: for naming an interval's ranks."""
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


@dataclass(frozen=True)
class RatioSummary:
    """The per-round ratios of one workload and what the table shows of them."""

    ratios: tuple[float, ...]
    median: float | None
    lo: float | None  # interval bounds; None when too few rounds for one
    hi: float | None
    coverage: float | None

    def as_dict(self) -> dict:
        return {"ratios": list(self.ratios), "median": self.median, "ci_low": self.lo,
                "ci_high": self.hi, "ci_coverage": self.coverage}


def summarize_ratios(ratios: list[float], confidence: float = CONFIDENCE) -> RatioSummary:
    """Median of `ratios` and its distribution-free confidence interval."""
    xs = tuple(ratios)
    if not xs:
        return RatioSummary(xs, None, None, None, None)
    ranks = median_interval_ranks(len(xs), confidence)
    if ranks is None:
        return RatioSummary(xs, statistics.median(xs), None, None, None)
    ordered = sorted(xs)
    lo, hi, coverage = ranks
    return RatioSummary(xs, statistics.median(xs), ordered[lo - 1], ordered[hi - 1], coverage)


def per_round_ratios(numerators: list[float | None], denominators: list[float | None]) -> list[float]:
    """numerator / denominator of every round in which both were measured."""
    return [a / b for a, b in zip(numerators, denominators) if a and b]


PASS, FAIL, UNDECIDED = "PASS", "FAIL", "UNDECIDED"


def verdict(summary: RatioSummary, limit: float) -> str:
    """PASS when the whole interval is at or below `limit`, FAIL when the whole interval is
    above it, UNDECIDED when it straddles the limit or there are too few rounds for an
    interval."""
    if summary.lo is None or summary.hi is None:
        return UNDECIDED
    if summary.hi <= limit:
        return PASS
    if summary.lo > limit:
        return FAIL
    return UNDECIDED


def versus(custody_ns: dict[str, list[float | None]],
           pairs: dict[str, tuple[str, float]]) -> dict[str, dict]:
    """Rows of one run against other rows of the same run (bench/compare's VERSUS table).

    `custody_ns` maps a row to its per-round ns/op (None where a round failed); `pairs` maps a row
    to (reference row, highest acceptable ratio). For every pair whose two rows were both run,
    gives the reference, the summary of the per-round ratios row/reference (rounds missing
    either side left out), the limit and the verdict."""
    out = {}
    for row, (against, limit) in pairs.items():
        if row not in custody_ns or against not in custody_ns:
            continue
        summary = summarize_ratios(per_round_ratios(custody_ns[row], custody_ns[against]))
        out[row] = {"against": against, "ratio": summary.as_dict(), "limit": limit,
                    "verdict": verdict(summary, limit)}
    return out
