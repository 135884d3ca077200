"""Statistics over independent units: the window, not the case.

The four CFA phases of a window are one image shifted by a pixel (their paired differences correlate
at 0.8-1.0), so they are averaged inside the window first and every mean, standard error, win rate
and test counts windows (``by_window``). A case without a window (an SR-RAW pair) is its own unit.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence


def unit_key(row: dict) -> tuple:
    """The independent unit of a scored row: (source, window), or the case itself."""
    if row.get("window") is not None:
        return ("window", row.get("source"), row["window"])
    return ("case", row.get("source"), row.get("case"))


def by_window(rows: Iterable[dict], metric: str, key: Callable[[dict], tuple] = unit_key) -> dict[tuple, float]:
    """{unit: the mean of ``metric`` over the unit's rows}, in first-seen order."""
    sums: dict[tuple, list[float]] = {}
    for row in rows:
        sums.setdefault(key(row), []).append(float(row[metric]))
    return {unit: sum(values) / len(values) for unit, values in sums.items()}


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def t_test_p(mean: float, se: float, n: int) -> float:
    """Two-sided p-value of a one-sample t-test of mean 0 (n - 1 degrees of freedom)."""
    if n < 2:
        return 1.0
    if se == 0:
        return 0.0 if mean else 1.0
    from scipy.stats import t

    return float(2 * t.sf(abs(mean / se), n - 1))


def paired(ours: Sequence[float], theirs: Sequence[float]) -> dict:
    """Paired differences ours - theirs over units: mean, standard error, two-sided t-test p,
    the share of units ours wins, and n."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"paired needs two equally long, non-empty sequences, got {len(ours)} and {len(theirs)}")
    differences = [a - b for a, b in zip(ours, theirs)]
    mean, se = mean_se(differences)
    wins = sum(d > 0 for d in differences)
    return {"mean": mean, "se": se, "p": t_test_p(mean, se, len(differences)), "win_rate": wins / len(differences),
            "wins": wins, "n": len(differences)}


def paired_rows(mine: Iterable[dict], theirs: Iterable[dict], metric: str) -> dict:
    """``paired`` over the windows two methods share, each window's phases averaged first."""
    ours, other = by_window(mine, metric), by_window(theirs, metric)
    units = [unit for unit in ours if unit in other]
    return paired([ours[u] for u in units], [other[u] for u in units])


def units_needed(mean: float, se: float, n: int, alpha: float = 0.05) -> int | None:
    """How many units the t-test of ``paired`` would need to put ``mean`` below p = ``alpha``, the
    per-unit spread (``se`` * sqrt(n)) staying the same; ``n`` when it already is, None when the mean
    is 0 or one unit gives no spread."""
    if mean == 0 or n < 2:
        return None
    sd = se * math.sqrt(n)
    if t_test_p(mean, se, n) < alpha:
        return n
    from scipy.stats import norm

    units = max(n + 1, math.ceil((norm.isf(alpha / 2) * sd / abs(mean)) ** 2))  # t's answer is never below z's
    while t_test_p(mean, sd / math.sqrt(units), units) >= alpha:
        units += 1
    return units
