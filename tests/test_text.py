"""Comment text: English and Chinese tokens, weighted log-odds with an informative prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custlib import demo, text


def test_language():
    assert text.language("配送太慢") == "zh"
    assert text.language("app 总是闪退") == "zh"
    assert text.language("Delivery was late!") == "en"


def test_english_tokens_words_and_phrases_without_stop_words():
    t = text.tokens("The delivery was LATE again")
    assert t == ["delivery", "late"]  # no phrase: "was" stands between the two words
    assert text.tokens("Slow shipping and rude staff") == ["slow", "shipping", "rude", "staff", "slow shipping",
                                                            "rude staff"]


@pytest.mark.parametrize("comment, words, phrases", [
    ("broke after a week", {"broke", "week"}, set()),
    ("arrived next day", {"arrived", "day"}, set()),
    ("package arrived damaged", {"package", "arrived", "damaged"}, {"package arrived", "arrived damaged"}),
    ("用了一周就坏了", {"用", "一周", "坏"}, set()),
    ("app 总是闪退", {"app", "闪退"}, set()),
    ("质量很差", {"质量", "很差"}, {"质量很差"}),
])
def test_phrases_join_adjacent_words_only(comment, words, phrases):
    """Removing stop words never joins words that were apart in the comment."""
    t = text.tokens(comment)
    assert set(t) == words | phrases


def test_chinese_tokens_segmented_with_jieba():
    t = text.tokens("配送太慢了")
    assert {"配送", "太慢", "配送太慢"} <= set(t)
    assert "了" not in t  # function word
    assert "不耐烦" in text.tokens("店员不耐烦")  # negation kept inside the word
    assert "配" not in t  # words, not characters


def test_weighted_log_odds_hand_example():
    """Term 1: y_a = 10, y_b = 2, prior 12; n_a = n_b = 15, prior total 30.
    odds_a = 22 / 23, odds_b = 14 / 31, log-odds = 0.75048, se = sqrt(1/22 + 1/14) = 0.34188."""
    out = text.weighted_log_odds([10, 0, 5], [2, 8, 5], [12, 8, 10])
    assert out.loc[0, "log_odds"] == pytest.approx(0.75048, abs=1e-5)
    assert out.loc[0, "se"] == pytest.approx(0.34188, abs=1e-5)
    assert out.loc[0, "z"] == pytest.approx(2.19514, abs=1e-5)
    swapped = text.weighted_log_odds([2, 8, 5], [10, 0, 5], [12, 8, 10])
    assert swapped["log_odds"].to_numpy() == pytest.approx(-out["log_odds"].to_numpy())
    assert out.loc[2, "log_odds"] == pytest.approx(0.0)  # same count in both groups


def test_distinctive_terms_both_languages():
    comments = pd.Series(["slow delivery again", "delivery was slow", "配送太慢", "配送太慢了", "it was ok",
                          "great service", "great friendly service", "服务热情", "服务很热情", "一般般", None] * 10)
    groups = pd.Series(["d", "d", "d", "d", "p", "p", "p", "p", "p", "x", "d"] * 10)
    terms = text.distinctive_terms(comments, groups, "d", "p")
    assert terms.attrs["n_comments"] == {"en": 50, "zh": 40}
    z = terms.set_index("term")["z"]
    assert z["slow"] > 1.96 and z["配送"] > 1.96
    assert z["great"] < -1.96 and z["热情"] < -1.96
    top = text.top_terms(terms, 3, "zh")
    assert set(top["language"]) == {"zh"} and set(top["side"]) == {"d", "p"}
    assert "配送太慢" in set(top["term"]) and "配送" not in set(top["term"])  # the word only occurs in the phrase


@pytest.mark.parametrize("unit", ["online", "stores", "b2b"])
def test_demo_detractor_terms_name_the_planted_top_drivers(unit, demo_unit, truth):
    """The three terms most typical of detractors, in each language, come from complaints about
    the two attributes with the largest planted weights."""
    r = demo_unit(unit).survey_responses.select("nps", "comment").execute()
    groups = np.where(r["nps"] >= 9, "promoter", np.where(r["nps"] <= 6, "detractor", "passive"))
    terms = text.distinctive_terms(r["comment"], pd.Series(groups), "detractor", "promoter")
    top2 = set(pd.Series(truth["units"][unit]["driver_weights"]).nlargest(2).index)
    for lang in ("en", "zh"):
        complaints = {a: v[0] for a, v in demo.PHRASES[lang].items() if a != "neutral"}
        top = text.top_terms(terms, 3, lang)
        top = top[top["side"] == "detractor"]
        assert len(top) == 3
        for term in top["term"]:
            attrs = {a for a, phrases in complaints.items() if any(term in text.tokens(p) for p in phrases)}
            assert attrs and attrs <= top2, (lang, term, attrs)


def test_stop_words_only_and_one_term_vocabulary():
    """A language whose comments hold only stop words is skipped; a one-term vocabulary gives
    no contrast (NaN), without warnings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = text.distinctive_terms(pd.Series(["it was", "the", "好", "好"]), pd.Series(["d", "p", "d", "p"]),
                                       "d", "p")
    assert set(terms["language"]) <= {"zh"} and terms["z"].isna().all()
