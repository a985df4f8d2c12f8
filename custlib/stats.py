"""Small shared statistics: an estimate with its uncertainty and n, and interval helpers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as st

Z95 = float(st.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with standard error, 95% interval, sample size and method."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    method: str = ""

    @classmethod
    def normal(cls, estimate: float, se: float, n: int, method: str = "") -> "Estimate":
        """Wald interval: estimate ± 1.96 se."""
        return cls(float(estimate), float(se), float(estimate - Z95 * se), float(estimate + Z95 * se),
                   int(n), method)

    def text(self, fmt: str = "{:,.2f}", unit: str = "") -> str:
        """'42 (95% CI 37–47, n = 1,204)'."""
        f = lambda x: fmt.format(x) + unit  # noqa: E731
        return f"{f(self.estimate)} (95% CI {f(self.ci_low)}–{f(self.ci_high)}, n = {self.n:,})"

    def short(self, fmt: str = "{:,.2f}", small_n: int = 0) -> str:
        """'12.3% (11.8%–12.9%)' for table cells; below ``small_n`` a note instead of a number."""
        if self.n < small_n:
            return f"n = {self.n} (too few)"
        return f"{fmt.format(self.estimate)} ({fmt.format(self.ci_low)}–{fmt.format(self.ci_high)})"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Unavailable:
    """In place of a result that this unit's data cannot support: says why, in a sentence that
    names the data that would enable it (shown by :func:`custlib.report.available`)."""

    reason: str

    @classmethod
    def needs_table(cls, table: str, what: str) -> "Unavailable":
        """``what`` needs an optional table the unit does not have (absent or without rows)."""
        return cls(f"{what} needs the {table} table, which has no rows for this unit; "
                   f"add {table} to the data source to see it.")

    @classmethod
    def too_few(cls, what: str, n: int, needed: int, of: str = "customers") -> "Unavailable":
        """Too few observations to estimate ``what``."""
        return cls(f"Too few to estimate {what}: {n:,} {of}, at least {needed:,} needed.")


def wilson_interval(successes, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (vectorised; statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(np.asarray(successes), np.asarray(n), alpha=alpha, method="wilson")
    return lo, hi


def proportion(successes: int, n: int, method: str = "Wilson") -> Estimate:
    """A proportion with its Wilson interval."""
    p = successes / n if n else float("nan")
    se = float(np.sqrt(p * (1 - p) / n)) if n else float("nan")
    lo, hi = wilson_interval(successes, n) if n else (np.nan, np.nan)
    return Estimate(float(p), se, float(lo), float(hi), int(n), method)
