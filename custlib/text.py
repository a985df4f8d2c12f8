"""Comment text: tokens for English and Chinese comments, and the terms most distinctive of one
group of comments against another (numbers only; the report's wording is in
:mod:`custlib.present.satisfaction`).

English is split into words as scikit-learn's word analyzer does (lower case, words of two or
more letters); Chinese is segmented with jieba. Terms are words and two-word phrases; a phrase
joins two words that are adjacent in the comment, and neither may be a stop word (English stop
words of scikit-learn; Chinese function words and intensifiers), so removing stop words never
joins words that were apart ("broke after a week" gives "broke" and "week", not "broke week").
Distinctiveness is the weighted log-odds ratio with an informative Dirichlet
prior (Monroe, Colaresi & Quinn 2008, "Fightin' words", eq. 22): the prior is the term's count
in all comments of the language, so rare terms are shrunk towards no difference, and the
z-score divides the log-odds by its approximate standard error.
"""

from __future__ import annotations

import itertools
import logging
import re
from functools import lru_cache

import numpy as np
import pandas as pd

LANGUAGES = ("zh", "en")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORD = re.compile(r"\w")
ENGLISH_WORD = re.compile(r"(?u)\b\w+\b")
# Function words and intensifiers that carry no topic (的, 了, 很, 太, ...); negations such as 不 stay.
CHINESE_STOPWORDS = frozenset(
    "的 了 着 过 地 得 就 都 也 还 又 再 和 与 及 或 而 但 是 在 有 我 你 他 她 它 我们 你们 他们 "
    "这 那 这个 那个 吧 呢 啊 吗 嘛 呀 哦 很 太 非常 特别 总是 一直 真 挺 比较 一".split()
)


def language(text: str) -> str:
    """``"zh"`` if the text contains Chinese characters, else ``"en"``."""
    return "zh" if CJK.search(text) else "en"


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _words(text: str) -> list[str | None]:
    """The words of one comment in order, lower case; ``None`` for a word that cannot be a term
    (a stop word, a one-letter English word, punctuation or space), so it separates phrases."""
    if language(text) == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return [w if len(w) > 1 and w not in ENGLISH_STOP_WORDS else None
                for w in ENGLISH_WORD.findall(text.lower())]
    words = [w.strip().lower() for w in _jieba().lcut(text)]
    return [w if WORD.search(w) and w not in CHINESE_STOPWORDS else None for w in words]


def tokens(text: str) -> list[str]:
    """Words and two-word phrases of one comment: a phrase is two adjacent words of the comment,
    neither a stop word (Chinese phrases are joined without a space)."""
    words = _words(text)
    phrases = [a + ("" if CJK.search(a) and CJK.search(b) else " ") + b
               for a, b in itertools.pairwise(words) if a and b]
    return [w for w in words if w] + phrases


def weighted_log_odds(count_a: np.ndarray, count_b: np.ndarray, prior: np.ndarray) -> pd.DataFrame:
    """Monroe et al. (2008) log-odds ratio of each term between groups a and b with the Dirichlet
    prior ``prior`` (pseudo-counts per term): ``log_odds`` > 0 means more typical of a,
    ``se`` its approximate standard error, ``z = log_odds / se``; NaN for a term that is every
    use of a group and of the prior (a vocabulary of one term: no contrast)."""
    y_a, y_b, alpha = (np.asarray(x, dtype=float) for x in (count_a, count_b, prior))
    n_a, n_b, alpha0 = y_a.sum(), y_b.sum(), alpha.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        odds_a = (y_a + alpha) / (n_a + alpha0 - y_a - alpha)
        odds_b = (y_b + alpha) / (n_b + alpha0 - y_b - alpha)
        delta = np.log(odds_a) - np.log(odds_b)
    se = np.sqrt(1 / (y_a + alpha) + 1 / (y_b + alpha))
    return pd.DataFrame({"log_odds": delta, "se": se, "z": delta / se})


def distinctive_terms(comments: pd.Series, groups: pd.Series, a: str, b: str,
                      min_count: int = 3) -> pd.DataFrame:
    """Terms of comments in group ``a`` against group ``b``, per language.

    ``comments`` and ``groups`` are aligned series (empty comments, and a language whose
    comments hold no words but stop words, are skipped). The prior is
    each term's count over all comments of that language (all groups, as in tidylo's
    ``bind_log_odds``). Returns ``language, term, n_a, n_b, log_odds, se, z``, one row per term
    used at least ``min_count`` times in a and b together, sorted by z (most typical of a first);
    comment counts per language and group are in ``.attrs["comments"]``, the comments of a and b
    per language in ``.attrs["n_comments"]``, ``(a, b)`` in ``.attrs["groups"]``.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    d = pd.DataFrame({"text": comments, "group": groups}).dropna()
    d = d[d["text"].str.strip() != ""]
    distinct = pd.unique(d["text"])  # comments repeat ("好", "Great service"): each is read once
    d["language"] = d["text"].map(dict(zip(distinct, map(language, distinct))))
    parts = []
    for lang, part in d.groupby("language"):
        distinct = pd.unique(part["text"])
        words = part["text"].map(dict(zip(distinct, map(tokens, distinct))))
        if not words.map(len).any():
            continue
        vec = CountVectorizer(analyzer=list)  # documents are token lists already
        counts = vec.fit_transform(words)
        y_a = np.asarray(counts[(part["group"] == a).to_numpy()].sum(axis=0)).ravel()
        y_b = np.asarray(counts[(part["group"] == b).to_numpy()].sum(axis=0)).ravel()
        prior = np.asarray(counts.sum(axis=0)).ravel()
        out = weighted_log_odds(y_a, y_b, prior)
        out.insert(0, "n_b", y_b.astype(int))
        out.insert(0, "n_a", y_a.astype(int))
        out.insert(0, "term", vec.get_feature_names_out())
        out.insert(0, "language", lang)
        parts.append(out[out["n_a"] + out["n_b"] >= min_count])
    cols = ["language", "term", "n_a", "n_b", "log_odds", "se", "z"]
    result = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols).astype(
        {"n_a": int, "n_b": int, "log_odds": float, "se": float, "z": float}))
    result = result.sort_values("z", ascending=False, ignore_index=True)
    result.attrs["comments"] = d.groupby(["language", "group"]).size().to_dict()
    result.attrs["groups"] = (a, b)
    result.attrs["n_comments"] = {lang: int(((d["language"] == lang) & d["group"].isin([a, b])).sum())
                                  for lang in ("en", "zh")}
    return result


def top_terms(terms: pd.DataFrame, n: int = 10, language: str | None = None) -> pd.DataFrame:
    """The ``n`` most distinctive terms of each group (``side``) per language, from
    :func:`distinctive_terms`, optionally of one language; only terms whose z-score exceeds
    1.96 in absolute value. A word that only occurs inside a listed phrase is shown once, as
    the phrase."""
    a, b = terms.attrs.get("groups", ("a", "b"))
    t = terms[terms["z"].abs() > 1.96]
    if language is not None:
        t = t[t["language"] == language]
    inside = t.groupby(["language", "n_a", "n_b"])["term"].transform(
        lambda g: [any(len(o) > len(w) and w in o for o in g) for w in g])
    t = t[~inside.astype(bool)]
    t = t.assign(side=np.where(t["z"] > 0, a, b), strength=t["z"].abs())
    t = t.sort_values("strength", ascending=False).groupby(["language", "side"], sort=False).head(n)
    out = (t.sort_values(["language", "side", "strength"], ascending=[True, True, False])
           .drop(columns="strength").reset_index(drop=True))
    out.attrs["groups"] = (a, b)
    return out
