"""The one formatter of numbers, estimates and intervals in reports, in the report language.

Kinds (what a number is decides how it reads):

========== ===================================== ==================
kind       input                                 shown
========== ===================================== ==================
pct        a share, 0.362                        36%
change     a relative change, 0.043              +4.3%
pp         a difference of shares, 0.018         +1.8 pp
money      an amount in ``currency``             CNY 1,462,990 / CNY 12.50
count      a whole number                        1,204
number     any other quantity                    0.25 / 1,234
days       a duration in days                    208 days
nps        NPS points, −100 to +100              +12
ratio      a ratio such as a hazard ratio        1.71
========== ===================================== ==================

Money has no fen (cents) from 1,000 up; ``compact`` money reads "CNY 14.6 million" / "1,463万元"
(the steps — millions and billions, or 万 and 亿 — come from the catalogue).
Minus signs are typographic, a negative zero is shown as 0, and p-values as ``p < 0.001`` or
``p = 0.03``. An estimate is anything with ``estimate, ci_low, ci_high`` and ``n`` (a
:class:`custlib.stats.Estimate`, a row of a tidy result frame, a dict).
"""

from __future__ import annotations

import math
import re

from custlib.present.i18n import has, t

KINDS = ("pct", "change", "pp", "money", "count", "number", "days", "nps", "ratio")
SIGNED = {"change", "pp", "nps"}
_NEG_ZERO = re.compile(r"^-(0(?:\.0+)?)$")


def _get(e, field: str):
    return e[field] if isinstance(e, dict) else getattr(e, field)


def missing(x) -> bool:
    """None or NaN: shown as a dash."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def _pct_digits(*values: float) -> int:
    finite = [abs(v) for v in values if not missing(v)]
    if not finite:
        return 0
    return 1 if max(finite) < 0.1 or (len(finite) > 1 and max(finite) - min(finite) < 0.02) else 0


def _plain(x: float, digits: int) -> str:
    text = f"{x:,.{digits}f}"
    text = _NEG_ZERO.sub(r"\1", text)
    return text.replace("-", "−")


def _sign(text: str, x: float) -> str:
    """A plus before a positive number unless it reads as zero."""
    return "+" + text if x > 0 and any(c in "123456789" for c in text) else text


def _number_digits(x: float) -> int:
    a = abs(x)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def money(x: float, currency: str, compact: bool = False, digits: int | None = None, signed: bool = False) -> str:
    """An amount with its currency: no fen from 1,000 up; ``compact`` in millions / 万."""
    if missing(x):
        return "–"
    if compact and abs(x) >= float(t("fmt.compact.small_at")):
        step = "big" if abs(x) >= float(t("fmt.compact.big_at")) else "small"
        scaled = x / float(t(f"fmt.compact.{step}_at"))
        amount = t(f"fmt.compact.{step}", x=_plain(scaled, 1 if abs(scaled) < 100 else 0))
    else:
        amount = _plain(x, digits if digits is not None else (0 if abs(x) >= 1000 else 2))
    if signed:
        amount = _sign(amount, x)
    key = f"fmt.currency.{currency}"
    return t(key, x=amount) if has(key) else f"{currency} {amount}"


def value(x, kind: str = "number", *, currency: str = "", signed: bool | None = None,
          digits: int | None = None, compact: bool = False) -> str:
    """One number in the report's style (see the module docstring for the kinds)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    if missing(x):
        return "–"
    x = float(x)
    signed = kind in SIGNED if signed is None else signed
    if kind == "money":
        return money(x, currency, compact, digits, signed)
    if kind in ("pct", "change"):
        d = _pct_digits(x) if digits is None else digits
        text = _plain(100 * x, d) + "%"
    elif kind == "pp":
        d = _pct_digits(x) if digits is None else digits
        text = t("fmt.pp", x=_plain(100 * x, d))
    elif kind == "count":
        text = _plain(round(x), 0)
    elif kind == "days":
        text = t("fmt.days", x=_plain(x, 0 if digits is None else digits))
    elif kind == "nps":
        text = _plain(x, 0 if digits is None else digits)
    elif kind == "ratio":
        text = _plain(x, 2 if digits is None else digits)
    else:
        text = _plain(x, _number_digits(x) if digits is None else digits)
    return _sign(text, x) if signed else text


def _bounds(e, kind: str, currency: str, signed: bool | None, digits: int | None, compact: bool = False):
    est, lo, hi = (_get(e, f) for f in ("estimate", "ci_low", "ci_high"))
    if digits is None and kind in ("pct", "change", "pp"):
        digits = _pct_digits(est, lo, hi)
    elif digits is None and kind == "money":
        digits = 0 if max(abs(v) for v in (est, lo, hi) if not missing(v)) >= 1000 else 2
    elif digits is None and kind in ("number", "ratio"):
        digits = max(_number_digits(v) for v in (est, lo, hi) if not missing(v)) if not missing(est) else 2
    f = lambda v: value(v, kind, currency=currency, signed=signed, digits=digits, compact=compact)  # noqa: E731
    return est, lo, hi, f


def interval(e, kind: str = "number", *, currency: str = "", signed: bool | None = None,
             digits: int | None = None, compact: bool = False) -> str:
    """The 95% interval alone: "34%–38%", or "−15 to +3" when a bound is negative."""
    _, lo, hi, f = _bounds(e, kind, currency, signed, digits, compact)
    if missing(lo) or missing(hi):
        return "–"
    sep = "–" if lo >= 0 and not (signed if signed is not None else kind in SIGNED) else t("fmt.to")
    return f"{f(lo)}{sep}{f(hi)}"


def estimate(e, kind: str = "number", *, currency: str = "", signed: bool | None = None,
             digits: int | None = None, n: bool = True, compact: bool = False) -> str:
    """"36% (95% CI 34%–38%, n = 1,204)" — the way a report states an estimate in a sentence."""
    est, _, _, f = _bounds(e, kind, currency, signed, digits, compact)
    ci = interval(e, kind, currency=currency, signed=signed, digits=digits, compact=compact)
    if n:
        return t("fmt.estimate_n", x=f(est), ci=ci, n=value(_get(e, "n"), "count"))
    return t("fmt.estimate", x=f(est), ci=ci)


def cell(e, kind: str = "number", *, currency: str = "", signed: bool | None = None,
         digits: int | None = None, small_n: int = 0, compact: bool = False) -> str:
    """"36% (34%–38%)" for a table cell; below ``small_n`` observations "too few (n = 12)"."""
    n = _get(e, "n")
    if small_n and not missing(n) and n < small_n:
        return t("fmt.too_few", n=value(n, "count"))
    est, _, _, f = _bounds(e, kind, currency, signed, digits, compact)
    return f"{f(est)} ({interval(e, kind, currency=currency, signed=signed, digits=digits, compact=compact)})"


def pvalue(p: float) -> str:
    """"p < 0.001", "p = 0.03", "p = 0.45"."""
    if missing(p):
        return "–"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"
