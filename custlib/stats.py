"""Small shared statistics: an estimate with its uncertainty and n, and interval helpers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
class Term:
    """A word or phrase from the language catalogue (its dotted key), for :class:`Unavailable`
    values that are wording rather than data."""

    key: str


@dataclass(frozen=True)
class Unavailable:
    """In place of a result that this unit's data cannot support: says why. ``key`` is the
    catalogue key of the sentence and ``values`` fill it in (numbers and data values as they are,
    :class:`Term` for wording), so the reason reads in the report's language (shown by
    :func:`custlib.report.available`)."""

    key: str
    values: dict = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The sentence in the current report language."""
        from custlib.present.i18n import unavailable_reason  # wording lives in the catalogue

        return unavailable_reason(self)

    @classmethod
    def needs_table(cls, table: str, what: str) -> "Unavailable":
        """``what`` (a catalogue key) needs an optional table the unit does not have."""
        return cls("unavailable.needs_table", {"table": table, "what": Term(what)})

    @classmethod
    def too_few(cls, what: str, n: int, needed: int, of: str = "unavailable.of.customers") -> "Unavailable":
        """Too few observations (``of``, a catalogue key) to estimate ``what`` (a catalogue key)."""
        return cls("unavailable.too_few", {"what": Term(what), "n": int(n), "needed": int(needed), "of": Term(of)})


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
