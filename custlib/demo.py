"""Demo data with planted truths: three business units of different character.

Everything is drawn from documented generative models so that each analysis can be checked
against what was planted:

* each customer belongs to a latent **archetype** that shifts purchase rate, order value, price
  sensitivity (discount use, price tiers) and demographics; gender is left independent of
  archetype on purpose. Per unit the four archetypes form a 2 x 2 design (frequent / occasional x
  high / low order value, with the same share of high-value archetypes at both rates), so that
  purchase rate, dropout and order value stay independent, as BG/NBD and Gamma-Gamma assume;
* purchases follow **BG/NBD** (Fader, Hardie & Lee 2005): after the first purchase, repeat
  purchases arrive at rate ``lambda`` per week and after each repeat purchase the customer drops
  out with probability ``p``; per unit, ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)``
  exactly, because archetypes and satisfaction act through a rank (Gaussian-copula) transform
  that keeps those marginal distributions; dropout does not depend on the archetype;
* order values follow **Gamma-Gamma**: ``z ~ Gamma(p, nu)`` with ``nu ~ Gamma(q, v)``;
* **loyalty**: heavier buyers (higher latent ``lambda``) are more likely to join; the joining
  date is uniform over the programme period, independent of behaviour; membership adds purchases
  at rate ``uplift[tier] * lambda`` while the customer is alive (these purchases do not trigger
  dropout), so the planted effect is a relative uplift of the purchase rate;
* **satisfaction**: a latent per-customer satisfaction drives attribute ratings; NPS is a
  weighted sum of the attribute latents with planted weights; lower satisfaction raises the
  dropout probability (unit-level strength ``satisfaction_dropout``, zero for b2b);
* **leads** progress through qualified -> opportunity -> won with planted conversion rates per
  source; the time to the decision at each stage does not depend on the outcome, so leads still
  open at the observation end are censored independently of their outcome;
* personal fields (names, e-mails, phones) are fake.

The generator is only ever a source of data: no analysis reads ``truth/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from custlib import contract

START = date(2023, 1, 1)
END = date(2025, 12, 31)
PROGRAMME_LAUNCH = date(2024, 1, 1)

REGIONS = {
    "East": ["Shanghai", "Hangzhou", "Nanjing", "Suzhou"],
    "North": ["Beijing", "Tianjin", "Shijiazhuang"],
    "South": ["Guangzhou", "Shenzhen", "Xiamen"],
    "Central": ["Wuhan", "Changsha", "Zhengzhou"],
    "West": ["Chengdu", "Chongqing", "Xi'an"],
}
# The stores unit is a Chinese retailer: its customer records name regions and cities in Chinese
# (as a Chinese CRM export does), so its reports show Chinese category values.
PLACES_ZH = {"East": "华东", "North": "华北", "South": "华南", "Central": "华中", "West": "西部",
             "Shanghai": "上海", "Hangzhou": "杭州", "Nanjing": "南京", "Suzhou": "苏州", "Beijing": "北京",
             "Tianjin": "天津", "Shijiazhuang": "石家庄", "Guangzhou": "广州", "Shenzhen": "深圳", "Xiamen": "厦门",
             "Wuhan": "武汉", "Changsha": "长沙", "Zhengzhou": "郑州", "Chengdu": "成都", "Chongqing": "重庆",
             "Xi'an": "西安"}
INTERESTS = ("fashion", "technology", "home", "sports", "travel", "food", "family", "business")
TIERS = ("basic", "standard", "premium")


@dataclass
class Archetype:
    """A latent customer type. Shifts are in standard-normal units of the copula scores."""

    name: str
    share: float
    rate_shift: float  # higher -> buys more often
    spend_shift: float  # higher -> larger orders
    discount_beta: tuple[float, float]  # per-customer share of discounted orders ~ Beta
    tier_weights: tuple[float, float, float]  # Dirichlet weights over basic/standard/premium
    age_mean: float
    income_probs: tuple[float, float, float, float]
    region_probs: tuple[float, float, float, float, float]
    interest_probs: dict[str, float]
    enterprise_share: float
    channel_probs: dict[str, float]  # acquisition channel


@dataclass
class UnitSpec:
    id: str
    display_name: str
    bgnbd: dict[str, float]  # r, alpha (weekly), a, b
    gamma_gamma: dict[str, float]  # p, q, v
    archetypes: list[Archetype]
    order_channels: dict[str, float]
    categories: dict[str, str]  # category -> price tier
    quantity_mean: float
    never_buy_share: float
    loyalty_join: dict[str, float]  # intercept, slope on latent rate score, vip slope on spend score
    loyalty_uplift: dict[str, float]  # tier -> relative uplift of the purchase rate
    driver_weights: dict[str, float]  # attribute -> planted NPS weight
    satisfaction_dropout: float  # copula loading of -satisfaction on the dropout score
    survey_rate: float
    chinese_comment_share: float
    lead_share: float
    funnel: dict[str, dict[str, float]]  # source -> stage -> conversion probability
    stage_days: dict[str, float]  # stage -> mean days to the decision
    lead_sources: dict[str, float] = field(default_factory=dict)
    chinese_places: bool = False  # regions and cities written in Chinese (PLACES_ZH)


def _interests(**kw: float) -> dict[str, float]:
    base = {k: 0.15 for k in INTERESTS}
    base.update(kw)
    return base


UNITS: dict[str, UnitSpec] = {
    "online": UnitSpec(
        id="online",
        display_name="Online shop 网店",
        bgnbd={"r": 0.9, "alpha": 6.0, "a": 0.8, "b": 4.0},
        gamma_gamma={"p": 6.0, "q": 4.0, "v": 150.0},
        archetypes=[
            Archetype("loyal_enthusiast", 0.24, 1.2, 1.5, (1, 8), (1.5, 10, 1.5), 34, (0.1, 0.25, 0.4, 0.25),
                      (0.45, 0.2, 0.2, 0.1, 0.05), _interests(technology=0.55, fashion=0.35), 0.02,
                      {"search": 0.3, "social_media": 0.2, "referral": 0.4, "marketplace": 0.1}),
            Archetype("deal_hunter", 0.30, 1.2, -1.5, (8, 1.5), (10, 1.5, 0.5), 27, (0.35, 0.4, 0.2, 0.05),
                      (0.15, 0.15, 0.2, 0.3, 0.2), _interests(fashion=0.5, food=0.35), 0.01,
                      {"search": 0.2, "social_media": 0.5, "referral": 0.1, "marketplace": 0.2}),
            Archetype("premium_occasional", 0.20, -1.2, 1.5, (0.5, 10), (0.5, 1.5, 10), 45, (0.02, 0.13, 0.35, 0.5),
                      (0.3, 0.35, 0.2, 0.1, 0.05), _interests(travel=0.5, home=0.4), 0.05,
                      {"search": 0.5, "social_media": 0.1, "referral": 0.3, "marketplace": 0.1}),
            Archetype("one_time_browser", 0.26, -1.2, -1.5, (8, 1.5), (0.5, 5, 5), 30, (0.25, 0.35, 0.3, 0.1),
                      (0.2, 0.2, 0.2, 0.2, 0.2), _interests(sports=0.3), 0.02,
                      {"search": 0.25, "social_media": 0.35, "referral": 0.05, "marketplace": 0.35}),
        ],
        order_channels={"web": 0.45, "app": 0.4, "mini_program": 0.15},
        categories={"accessories": "basic", "home_basics": "basic", "apparel": "standard",
                    "beauty": "standard", "electronics": "premium", "designer": "premium"},
        quantity_mean=1.8,
        never_buy_share=0.08,
        loyalty_join={"intercept": -1.2, "rate_slope": 1.5, "vip_intercept": -1.6, "vip_spend_slope": 0.9},
        loyalty_uplift={"points": 0.10, "vip": 0.30},
        driver_weights={"delivery": 0.45, "value_for_money": 0.32, "product_quality": 0.18,
                        "digital_experience": 0.08, "service": 0.04},
        satisfaction_dropout=0.6,
        survey_rate=0.30,
        chinese_comment_share=0.5,
        lead_share=0.15,
        lead_sources={"social_media": 0.5, "search_ads": 0.3, "referral": 0.2},
        funnel={"social_media": {"qualified": 0.35, "opportunity": 0.45, "won": 0.40},
                "search_ads": {"qualified": 0.50, "opportunity": 0.50, "won": 0.45},
                "referral": {"qualified": 0.70, "opportunity": 0.60, "won": 0.55}},
        stage_days={"lead": 5, "qualified": 7, "opportunity": 10},
    ),
    "stores": UnitSpec(
        id="stores",
        display_name="Retail stores 门店",
        chinese_places=True,
        bgnbd={"r": 1.3, "alpha": 9.0, "a": 0.6, "b": 5.0},
        gamma_gamma={"p": 5.0, "q": 3.5, "v": 60.0},
        archetypes=[
            Archetype("regular_local", 0.30, 1.2, 1.5, (1, 8), (1.5, 10, 1.5), 48, (0.1, 0.35, 0.4, 0.15),
                      (0.5, 0.15, 0.15, 0.1, 0.1), _interests(home=0.5, food=0.5, family=0.4), 0.03,
                      {"walk_in": 0.6, "flyer": 0.2, "referral": 0.15, "social_media": 0.05}),
            Archetype("bargain_family", 0.30, 1.2, -1.5, (8, 1.5), (10, 1.5, 0.5), 38, (0.35, 0.45, 0.15, 0.05),
                      (0.1, 0.2, 0.15, 0.35, 0.2), _interests(family=0.7, food=0.4), 0.02,
                      {"walk_in": 0.4, "flyer": 0.45, "referral": 0.05, "social_media": 0.1}),
            Archetype("premium_shopper", 0.20, -1.2, 1.5, (0.5, 10), (0.5, 1.5, 10), 52, (0.02, 0.1, 0.38, 0.5),
                      (0.35, 0.35, 0.2, 0.05, 0.05), _interests(fashion=0.5, travel=0.45), 0.04,
                      {"walk_in": 0.4, "flyer": 0.05, "referral": 0.4, "social_media": 0.15}),
            Archetype("occasional_visitor", 0.20, -1.2, -1.5, (8, 1.5), (0.5, 5, 5), 29, (0.25, 0.4, 0.25, 0.1),
                      (0.15, 0.2, 0.25, 0.2, 0.2), _interests(sports=0.35, technology=0.3), 0.02,
                      {"walk_in": 0.3, "flyer": 0.15, "referral": 0.05, "social_media": 0.5}),
        ],
        order_channels={"store": 0.85, "phone": 0.05, "click_and_collect": 0.10},
        categories={"groceries": "basic", "household": "basic", "clothing": "standard",
                    "kitchen": "standard", "jewellery": "premium", "wine": "premium"},
        quantity_mean=3.0,
        never_buy_share=0.05,
        loyalty_join={"intercept": -0.9, "rate_slope": 1.5, "vip_intercept": -1.9, "vip_spend_slope": 0.8},
        loyalty_uplift={"points": 0.15, "vip": 0.25},
        driver_weights={"service": 0.42, "product_quality": 0.34, "value_for_money": 0.16,
                        "delivery": 0.06, "digital_experience": 0.03},
        satisfaction_dropout=0.5,
        survey_rate=0.25,
        chinese_comment_share=0.7,
        lead_share=0.10,
        lead_sources={"walk_in": 0.5, "social_media": 0.3, "referral": 0.2},
        funnel={"walk_in": {"qualified": 0.60, "opportunity": 0.55, "won": 0.60},
                "social_media": {"qualified": 0.30, "opportunity": 0.40, "won": 0.45},
                "referral": {"qualified": 0.65, "opportunity": 0.60, "won": 0.65}},
        stage_days={"lead": 3, "qualified": 5, "opportunity": 7},
    ),
    "b2b": UnitSpec(
        id="b2b",
        display_name="B2B accounts 企业客户",
        bgnbd={"r": 2.0, "alpha": 12.0, "a": 0.5, "b": 6.0},
        gamma_gamma={"p": 4.0, "q": 5.0, "v": 12000.0},
        archetypes=[
            Archetype("key_account", 0.20, 1.2, 1.5, (0.5, 10), (0.5, 1.5, 10), 45, (0.0, 0.1, 0.3, 0.6),
                      (0.45, 0.3, 0.15, 0.05, 0.05), _interests(business=0.9, technology=0.5), 0.97,
                      {"trade_show": 0.5, "website_form": 0.1, "referral": 0.3, "cold_call": 0.1}),
            Archetype("growing_smb", 0.30, 1.2, -1.5, (1, 8), (1.5, 10, 1.5), 40, (0.1, 0.3, 0.4, 0.2),
                      (0.2, 0.2, 0.3, 0.2, 0.1), _interests(business=0.8), 0.9,
                      {"trade_show": 0.2, "website_form": 0.4, "referral": 0.2, "cold_call": 0.2}),
            Archetype("price_buyer", 0.30, -1.2, -1.5, (8, 1.5), (10, 1.5, 0.5), 40, (0.2, 0.4, 0.3, 0.1),
                      (0.1, 0.15, 0.25, 0.3, 0.2), _interests(business=0.8), 0.9,
                      {"trade_show": 0.1, "website_form": 0.3, "referral": 0.05, "cold_call": 0.55}),
            Archetype("dormant_trial", 0.20, -1.2, 1.5, (8, 1.5), (0.5, 5, 5), 38, (0.2, 0.35, 0.35, 0.1),
                      (0.15, 0.15, 0.2, 0.25, 0.25), _interests(business=0.7), 0.85,
                      {"trade_show": 0.2, "website_form": 0.5, "referral": 0.05, "cold_call": 0.25}),
        ],
        order_channels={"sales_rep": 0.55, "portal": 0.40, "edi": 0.05},
        categories={"consumables": "basic", "spare_parts": "basic", "equipment": "standard",
                    "software": "standard", "enterprise_systems": "premium", "consulting": "premium"},
        quantity_mean=12.0,
        never_buy_share=0.10,
        loyalty_join={"intercept": -1.0, "rate_slope": 1.5, "vip_intercept": -1.0, "vip_spend_slope": 1.0},
        loyalty_uplift={"points": 0.05, "vip": 0.20},
        driver_weights={"service": 0.40, "product_quality": 0.30, "delivery": 0.18,
                        "value_for_money": 0.10, "digital_experience": 0.05},
        satisfaction_dropout=0.0,
        survey_rate=0.35,
        chinese_comment_share=0.3,
        lead_share=0.6,
        lead_sources={"trade_show": 0.3, "website_form": 0.35, "referral": 0.15, "cold_call": 0.2},
        funnel={"trade_show": {"qualified": 0.45, "opportunity": 0.50, "won": 0.35},
                "website_form": {"qualified": 0.40, "opportunity": 0.45, "won": 0.30},
                "referral": {"qualified": 0.70, "opportunity": 0.60, "won": 0.50},
                "cold_call": {"qualified": 0.15, "opportunity": 0.35, "won": 0.25}},
        stage_days={"lead": 10, "qualified": 20, "opportunity": 30},
    ),
}

# Comment phrases that carry the planted drivers: (negative, positive) per attribute and language.
PHRASES = {
    "en": {
        "product_quality": (["poor quality", "broke after a week", "cheap materials"],
                            ["excellent quality", "well made product", "great materials"]),
        "value_for_money": (["too expensive", "overpriced for what you get", "prices went up"],
                            ["great value", "good price", "worth the money"]),
        "delivery": (["delivery was late", "slow shipping", "package arrived damaged"],
                     ["fast delivery", "arrived next day", "quick shipping"]),
        "service": (["rude staff", "nobody answered my call", "unhelpful support"],
                    ["friendly staff", "helpful support", "great service"]),
        "digital_experience": (["the app keeps crashing", "confusing website", "checkout failed"],
                               ["easy to use app", "smooth checkout", "clear website"]),
        "neutral": ["it was ok", "nothing special", "as expected"],
    },
    "zh": {
        "product_quality": (["质量很差", "用了一周就坏了", "材料太差"], ["质量非常好", "做工精细", "材料很好"]),
        "value_for_money": (["价格太贵", "性价比太低", "又涨价了"], ["性价比很高", "价格实惠", "物有所值"]),
        "delivery": (["配送太慢", "快递延迟", "包装破损"], ["送货很快", "第二天就到了", "物流速度快"]),
        "service": (["服务态度差", "客服不回复", "店员不耐烦"], ["服务热情", "客服很耐心", "服务周到"]),
        "digital_experience": (["应用总是闪退", "网站很难用", "付款失败"], ["应用好用", "付款流程顺畅", "网站清晰"]),
        "neutral": ["还可以", "一般般", "和预期一样"],
    },
}
SURNAMES = np.array(["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun"])
GIVEN = np.array(["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ming", "Hui", "Qiang", "Li", "Xin"])
COMPANY = np.array(["Tech", "Trading", "Industrial", "Logistics", "Foods", "Medical", "Energy", "Design"])


def _rank_transform(score: np.ndarray, dist) -> np.ndarray:
    """Map scores to ``dist`` through their ranks: the result has exactly ``dist``'s quantiles."""
    u = (stats.rankdata(score, method="ordinal") - 0.5) / len(score)
    return dist.ppf(u)


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    return (rng.random((len(probs), 1)) > cum).sum(axis=1)


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _to_date(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as datetime64[D]; NaN and infinite days become NaT. (Not
    pd.to_datetime(unit="D"): with NaN it can raise a spurious overflow.)"""
    days = np.asarray(days, dtype="float64")
    out = np.full(days.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    known = np.isfinite(days)
    out[known] = days[known].astype("int64").astype("datetime64[D]")
    return out


class _Unit:
    """Draws one business unit: customers, transactions, members, surveys and leads."""

    def __init__(self, spec: UnitSpec, n: int, rng: np.random.Generator, start: date, end: date,
                 launch: date):
        self.spec, self.n, self.rng = spec, n, rng
        self.start, self.end, self.launch = _days(start), _days(end), _days(launch)

    # -- leads come first: won leads become customers ---------------------------------------
    def leads(self) -> pd.DataFrame:
        s, rng = self.spec, self.rng
        n_leads = int(round(self.n * s.lead_share))
        sources = np.array(list(s.lead_sources))
        src = rng.choice(len(sources), n_leads, p=np.array(list(s.lead_sources.values())))
        created = rng.integers(self.start, self.end - 7, n_leads).astype(float)
        stage = np.zeros(n_leads, dtype=int)  # 0 lead, 1 qualified, 2 opportunity, 3 won
        lost = np.zeros(n_leads, dtype=bool)
        dates = {k: np.full(n_leads, np.nan) for k in ("qualified", "opportunity", "won", "lost")}
        t = created.copy()
        open_ = np.ones(n_leads, dtype=bool)
        for k, (from_stage, to_stage) in enumerate((("lead", "qualified"), ("qualified", "opportunity"),
                                                     ("opportunity", "won"))):
            conv = np.array([s.funnel[x][to_stage] for x in sources])[src]
            decide = t + np.ceil(rng.exponential(s.stage_days[from_stage], n_leads))
            at_stage = open_ & (stage == k)
            censored = at_stage & (decide > self.end)
            advance = at_stage & ~censored & (rng.random(n_leads) < conv)
            loses = at_stage & ~censored & ~advance
            dates[to_stage][advance] = decide[advance]
            dates["lost"][loses] = decide[loses]
            stage[advance] = k + 1
            lost |= loses
            open_ &= ~(loses | censored)
            t = np.where(advance, decide, t)
        names = np.array(["lead", "qualified", "opportunity", "won"])
        out = pd.DataFrame({
            "lead_no": np.arange(n_leads),
            "business_unit": s.id,
            "created_date": _to_date(created),
            "source": sources[src],
            "stage": np.where(lost, "lost", names[stage]),
        })
        for k in ("qualified", "opportunity", "won", "lost"):
            out[f"{k}_date"] = pd.Series(_to_date(dates[k])).dt.date.values
        return out

    def customers(self, won_days: np.ndarray) -> pd.DataFrame:
        s, rng, n = self.spec, self.rng, self.n
        arch = rng.choice(len(s.archetypes), n, p=[a.share for a in s.archetypes])
        A = s.archetypes
        pick = lambda attr: np.array([getattr(a, attr) for a in A])[arch]  # noqa: E731
        buyers = rng.random(n) >= s.never_buy_share
        n_won = min(len(won_days), n)
        buyers[:n_won] = True
        signup = rng.integers(self.start, self.end - 14, n).astype(float)
        signup[:n_won] = won_days[:n_won]
        first = signup + np.where(np.arange(n) < n_won, 0, np.floor(rng.exponential(5, n)))
        first = np.minimum(first, self.end)

        # latent scores (standard-normal units), converted to the unit's exact marginals
        sat = rng.normal(size=n)
        attr_latent = 0.55 * sat[:, None] + np.sqrt(1 - 0.55**2) * rng.normal(size=(n, len(contract.SURVEY_ATTRIBUTES)))
        w = np.array([s.driver_weights[a] for a in contract.SURVEY_ATTRIBUTES])
        nps_latent = attr_latent @ w + 0.25 * rng.normal(size=n)
        nps_z = (nps_latent - nps_latent.mean()) / nps_latent.std()
        rate_score = pick("rate_shift") + rng.normal(size=n)
        dropout_score = -s.satisfaction_dropout * nps_z + rng.normal(size=n)
        spend_score = pick("spend_shift") + rng.normal(size=n)
        g = s.bgnbd
        lam = _rank_transform(rate_score, stats.gamma(g["r"], scale=1 / g["alpha"]))
        p_drop = _rank_transform(dropout_score, stats.beta(g["a"], g["b"]))
        gg = s.gamma_gamma
        nu = _rank_transform(-spend_score, stats.gamma(gg["q"], scale=1 / gg["v"]))
        disc = rng.beta(pick("discount_beta")[:, 0], pick("discount_beta")[:, 1])
        tiers = rng.gamma(np.array([a.tier_weights for a in A])[arch])
        tiers /= tiers.sum(axis=1, keepdims=True)

        enterprise = rng.random(n) < pick("enterprise_share")
        region_idx = _choice(rng, np.array([a.region_probs for a in A])[arch])
        region_names = np.array(list(REGIONS))
        city = np.empty(n, dtype=object)
        for k, r in enumerate(region_names):
            m = region_idx == k
            city[m] = rng.choice(REGIONS[r], m.sum())
        income = np.array(contract.INCOME_BANDS)[_choice(rng, np.array([a.income_probs for a in A])[arch])]
        age = np.clip(np.round(pick("age_mean") + rng.normal(0, 9, n)), 18, 85)
        gender = rng.choice(["female", "male", "other"], n, p=[0.52, 0.46, 0.02])
        chan_names = list(A[0].channel_probs)
        acq = np.array(chan_names)[_choice(rng, np.array([[a.channel_probs[c] for c in chan_names] for a in A])[arch])]
        tag_p = np.array([[a.interest_probs[t] for t in INTERESTS] for a in A])[arch]
        has_tag = rng.random((n, len(INTERESTS))) < tag_p
        interests = np.full(n, "", dtype=object)
        for k, tag in enumerate(INTERESTS):
            interests = np.where(has_tag[:, k], interests + np.where(interests == "", "", ";") + tag, interests)
        interests[interests == ""] = None

        surname = SURNAMES[rng.integers(0, len(SURNAMES), n)]
        given = GIVEN[rng.integers(0, len(GIVEN), n)]
        name = np.char.add(np.char.add(surname, " "), given).astype(object)
        name[enterprise] = np.char.add(surname[enterprise], np.char.add(" ", COMPANY[rng.integers(0, len(COMPANY), enterprise.sum())])) + " Co."
        email = np.char.add(np.char.add(np.char.lower(given), np.char.lower(surname)),
                            rng.integers(10, 9999, n).astype(str))
        email = np.char.add(email, "@example.com")
        phone = np.char.add("1", rng.integers(3_000_000_000, 9_999_999_999, n).astype(str))

        self.latent = pd.DataFrame({
            "archetype": np.array([a.name for a in A])[arch],
            "buyer": buyers, "first_day": first,
            "purchase_rate": lam, "dropout_prob": p_drop, "spend_rate": nu,
            "mean_spend": gg["p"] / nu, "satisfaction": nps_z, "rate_score": rate_score,
            "spend_score": spend_score, "discount_propensity": disc,
            "basic_share": tiers[:, 0], "standard_share": tiers[:, 1], "premium_share": tiers[:, 2],
        })
        self.attr_latent, self.sat = attr_latent, sat
        ent = enterprise
        places = (lambda names: pd.Series(names).map(PLACES_ZH).to_numpy()) if s.chinese_places else np.asarray
        return pd.DataFrame({
            "customer_no": np.arange(n),
            "business_unit": s.id,
            "signup_date": _to_date(signup),
            "customer_type": np.where(ent, "enterprise", "individual"),
            "region": places(region_names[region_idx]),
            "city": places(city),
            "age": pd.array(np.where(ent, np.nan, age), dtype="Int64"),
            "gender": np.where(ent, None, gender),
            "income_band": np.where(ent, None, income),
            "interests": interests,
            "acquisition_channel": acq,
            "name": name, "email": email, "phone": phone,
        })

    def purchases(self) -> pd.DataFrame:
        """Event times (days) from BG/NBD plus the members' uplift purchases."""
        rng, lat = self.rng, self.latent
        idx = np.flatnonzero(lat["buyer"].to_numpy())
        first = lat["first_day"].to_numpy()[idx]
        lam = lat["purchase_rate"].to_numpy()[idx] / 7.0  # per day
        p = lat["dropout_prob"].to_numpy()[idx]
        events_c, events_t = [idx], [first]
        t = first.copy()
        death = np.full(len(idx), np.inf)
        active = np.arange(len(idx))
        while active.size:
            t[active] += rng.exponential(1.0 / lam[active])
            inside = t[active] <= self.end + 0.999
            active = active[inside]
            events_c.append(idx[active])
            events_t.append(t[active])
            drops = rng.random(active.size) < p[active]
            death[active[drops]] = t[active[drops]]
            active = active[~drops]
        # loyalty: who joins (heavier buyers more often), when (uniform over the programme), tier
        s = self.spec
        j = s.loyalty_join
        rate_score = lat["rate_score"].to_numpy()[idx]
        spend_score = lat["spend_score"].to_numpy()[idx]
        joins = rng.random(len(idx)) < 1 / (1 + np.exp(-(j["intercept"] + j["rate_slope"] * rate_score)))
        vip = rng.random(len(idx)) < 1 / (1 + np.exp(-(j["vip_intercept"] + j["vip_spend_slope"] * spend_score)))
        lo = np.maximum(first, self.launch)
        enroll = np.floor(lo + rng.random(len(idx)) * (self.end + 180 - lo))
        enroll[~joins] = np.nan
        uplift = np.where(vip, s.loyalty_uplift["vip"], s.loyalty_uplift["points"])
        stop = np.minimum(death, self.end + 0.999)
        exposure = np.where(joins & (enroll < stop), stop - enroll - 1, 0).clip(min=0)
        extra = rng.poisson(uplift * lam * exposure)
        rep = np.repeat(np.arange(len(idx)), extra)
        events_c.append(idx[rep])
        events_t.append(enroll[rep] + 1 + rng.random(rep.size) * exposure[rep])
        tier = np.where(vip, "vip", "points").astype(object)
        tier[~joins] = None
        self.latent.loc[idx, "death_day"] = death
        self.latent.loc[idx, "enroll_day"] = enroll
        self.latent.loc[idx, "loyalty_tier"] = tier
        self.latent.loc[idx, "loyalty_uplift"] = np.where(joins, uplift, np.nan)
        return pd.DataFrame({"customer_no": np.concatenate(events_c),
                             "day": np.floor(np.concatenate(events_t))})

    def transactions(self, ev: pd.DataFrame) -> pd.DataFrame:
        s, rng, lat = self.spec, self.rng, self.latent
        ev = ev.sort_values(["customer_no", "day"], kind="stable").reset_index(drop=True)
        c = ev["customer_no"].to_numpy()
        m = len(ev)
        gg = s.gamma_gamma
        amount = rng.gamma(gg["p"], 1.0 / lat["spend_rate"].to_numpy()[c])
        discounted = rng.random(m) < lat["discount_propensity"].to_numpy()[c]
        rate = np.where(discounted, rng.uniform(0.05, 0.3, m), 0.0)
        discount = amount * rate / (1 - rate)
        tier_p = lat[["basic_share", "standard_share", "premium_share"]].to_numpy()[c]
        tier = _choice(rng, tier_p)
        cats = np.array(list(s.categories))
        cat_tier = np.array([TIERS.index(s.categories[k]) for k in cats])
        cat = np.empty(m, dtype=object)
        for k in range(3):
            pool = cats[cat_tier == k]
            sel = tier == k
            cat[sel] = pool[rng.integers(0, len(pool), sel.sum())]
        chans = np.array(list(s.order_channels))
        channel = chans[rng.choice(len(chans), m, p=list(s.order_channels.values()))]
        qty = 1 + rng.poisson(s.quantity_mean - 1, m)
        tx = pd.DataFrame({
            "customer_no": c, "business_unit": s.id, "order_day": ev["day"].to_numpy(),
            "amount": np.round(amount, 2), "discount": np.round(discount, 2), "quantity": qty,
            "channel": pd.Categorical(channel), "product_category": pd.Categorical(cat),
        })
        # returns: 1.5% of orders are partly returned 3-30 days later (negative amount)
        ret = tx[(rng.random(m) < 0.015)].copy()
        ret["order_day"] = ret["order_day"] + rng.integers(3, 31, len(ret))
        ret = ret[ret["order_day"] <= self.end]
        ret["amount"] = -np.round(ret["amount"] * rng.uniform(0.3, 1.0, len(ret)), 2)
        ret["discount"] = 0.0
        ret["quantity"] = 1
        return pd.concat([tx, ret], ignore_index=True)

    def surveys(self, tx: pd.DataFrame) -> pd.DataFrame:
        """One survey from a share of buyers, a few days after one of their purchases."""
        s, rng = self.spec, self.rng
        orders = tx[tx["amount"] > 0]
        pick = orders.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).drop_duplicates("customer_no")
        pick = pick[rng.random(len(pick)) < s.survey_rate]
        c = pick["customer_no"].to_numpy()
        k = len(c)
        day = np.minimum(pick["order_day"].to_numpy() + rng.integers(1, 8, k), self.end)
        x = self.attr_latent[c] + 0.35 * rng.normal(size=(k, len(contract.SURVEY_ATTRIBUTES)))
        ratings = np.clip(np.round(3.4 + 1.1 * x), 1, 5).astype(int)
        z = self.latent["satisfaction"].to_numpy()[c]
        nps = np.clip(np.round(7.6 + 2.0 * z + 0.6 * rng.normal(size=k)), 0, 10).astype(int)
        csat = np.clip(np.round(3.7 + 0.9 * z + 0.5 * rng.normal(size=k)), 1, 5).astype(int)
        out = pd.DataFrame({"customer_no": c, "business_unit": s.id, "response_date": _to_date(day),
                            "nps": nps, "csat": csat})
        for j, a in enumerate(contract.SURVEY_ATTRIBUTES):
            out[a] = ratings[:, j]
        out["comment"] = self._comments(nps, ratings)
        return out.sort_values("response_date", kind="stable").reset_index(drop=True)

    def _comments(self, nps: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Detractors complain about a weak attribute, promoters praise a strong one, weighted
        by the planted driver weights; 70% leave a comment, in Chinese or English."""
        rng, s = self.rng, self.spec
        k = len(nps)
        w = np.array([s.driver_weights[a] for a in contract.SURVEY_ATTRIBUTES])
        neg = w * (5 - ratings) + 1e-9
        pos = w * (ratings - 1) + 1e-9
        detr, prom = nps <= 6, nps >= 9
        attr = np.where(detr, _choice(rng, neg), _choice(rng, pos))
        lang = np.where(rng.random(k) < s.chinese_comment_share, "zh", "en")
        variant = rng.integers(0, 3, k)
        out = np.empty(k, dtype=object)
        for i in range(k):
            book = PHRASES[lang[i]]
            if detr[i]:
                text = book[contract.SURVEY_ATTRIBUTES[attr[i]]][0][variant[i]]
            elif prom[i]:
                text = book[contract.SURVEY_ATTRIBUTES[attr[i]]][1][variant[i]]
            else:
                text = book["neutral"][variant[i]]
            out[i] = text
        out[rng.random(k) >= 0.7] = None
        return out


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    """Keys such as ``ON0000042``: the prefix and the number padded to seven digits."""
    return np.array([f"{prefix}{n:07d}" for n in numbers.tolist()], dtype=object) if len(numbers) else np.array([], dtype=object)


BATCH_CUSTOMERS = 1_000_000  # a larger unit is drawn in batches of this size (bounded memory)


def _draw_batch(uid: str, customers: int, first: int, first_lead: int, rng: np.random.Generator,
                start: date, end: date, launch: date) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """One batch of a unit: customers numbered from ``first`` (leads from ``first_lead``); the
    contract tables (transactions still with ``customer_no`` and ``order_day``) and the truth."""
    spec = UNITS[uid]
    u = _Unit(spec, customers, rng, start, end, launch)
    leads = u.leads()
    won = leads["won_date"].notna().to_numpy()
    won_days = np.array([_days(d) for d in leads.loc[won, "won_date"]], dtype=float)
    cust = u.customers(won_days)
    tx = u.transactions(u.purchases())
    sv = u.surveys(tx)
    prefix = uid[:2].upper()
    ids = _ids(prefix, first + np.arange(customers))
    cust.insert(0, "customer_id", ids)
    leads["customer_id"] = None
    leads.loc[won, "customer_id"] = ids[: won.sum()]
    first_amount = tx.drop_duplicates("customer_no").set_index("customer_no")["amount"]
    leads.loc[won, "amount"] = first_amount.reindex(np.arange(won.sum())).to_numpy()
    leads.insert(0, "lead_id", _ids(prefix + "L", first_lead + leads.pop("lead_no").to_numpy()))
    sv.insert(0, "customer_id", ids[sv.pop("customer_no")])
    tx["customer_no"] += first
    lat = u.latent
    mem = lat[lat["enroll_day"] <= u.end]
    members = pd.DataFrame({"customer_id": ids[mem.index], "business_unit": uid,
                            "enrolled_date": _to_date(mem["enroll_day"]), "tier": mem["loyalty_tier"]})
    truth = lat.drop(columns=["rate_score", "spend_score", "buyer"]).copy()
    truth.insert(0, "customer_id", ids)
    truth.insert(1, "business_unit", uid)
    truth["first_purchase_date"] = np.where(lat["buyer"], _to_date(lat["first_day"]), np.datetime64("NaT"))
    truth["enrolled_date_planned"] = pd.to_datetime(_to_date(lat["enroll_day"]))
    truth["dropped_out_date"] = pd.to_datetime(_to_date(lat["death_day"]))
    truth = truth.drop(columns=["first_day", "enroll_day", "death_day"])
    tables = {"customers": cust.drop(columns="customer_no"), "transactions": tx, "loyalty_members": members,
              "survey_responses": sv, "leads": leads}
    return tables, truth


def _unit_parameters(uid: str) -> dict:
    spec = asdict(UNITS[uid])
    spec["independent_of_archetype"] = ["gender"]
    spec["loyalty_uplift_meaning"] = "relative increase of the purchase rate while active, from the day after enrollment"
    spec["funnel_meaning"] = "P(reach next stage | decision taken at this stage)"
    spec["bgnbd_units"] = "weeks"
    return spec


def _transactions_sql(part: Path, prefix: str, first_order: int) -> str:
    """The contract's transactions of one written batch (ids and dates formatted by DuckDB), its
    orders numbered from ``first_order`` by day and customer."""
    return (f"SELECT '{prefix}-' || lpad(CAST({first_order} + order_no AS VARCHAR), 9, '0') AS order_id, "
            f"'{prefix}' || lpad(CAST(customer_no AS VARCHAR), 7, '0') AS customer_id, business_unit, "
            f"CAST(DATE '1970-01-01' + CAST(order_day AS INTEGER) AS DATE) AS order_date, amount, discount, "
            f"quantity, CAST(channel AS VARCHAR) AS channel, "
            f"CAST(product_category AS VARCHAR) AS product_category FROM read_parquet('{part}')")


def generate(out: str | Path, customers: int = 20_000, seed: int = 42,
             units: tuple[str, ...] = tuple(UNITS), start: date = START, end: date = END,
             launch: date = PROGRAMME_LAUNCH, progress: bool = False) -> dict:
    """Write the demo tables (Parquet) and the planted truths (``<out>/truth/``).

    ``customers`` is per business unit. Deterministic for a seed; a unit's data does not depend
    on the other units generated. Units above :data:`BATCH_CUSTOMERS` are drawn in batches
    (each its own random stream) written to disk as they go, so memory stays that of one batch
    (about 4 GB per million customers). Returns row counts.
    """
    import shutil
    import tempfile

    import duckdb

    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    parts = Path(tempfile.mkdtemp(dir=out, prefix=".parts-"))
    written: dict[str, list[Path]] = {}
    tx_selects, counts, responses = [], {}, 0
    params = {"observation_end": end.isoformat(), "data_start": start.isoformat(),
              "programme_launch": launch.isoformat(), "units": {}}
    batches = [(uid, b, first) for uid in units for b, first in enumerate(range(0, customers, BATCH_CUSTOMERS))]
    bar = tqdm(total=len(batches) + 1, desc="demo data", unit="step", disable=not progress)
    try:
        orders, leads = {}, {}
        for uid, b, first in batches:
            k = list(UNITS).index(uid)
            rng = np.random.default_rng([seed, k, b] if b else [seed, k])
            size = min(BATCH_CUSTOMERS, customers - first)
            tables, truth = _draw_batch(uid, size, first, leads.get(uid, 0), rng, start, end, launch)
            leads[uid] = leads.get(uid, 0) + len(tables["leads"])
            tx = tables["transactions"]
            tx = tx.iloc[np.lexsort((tx["customer_no"].to_numpy(), tx["order_day"].to_numpy()))]
            tables["transactions"] = tx.assign(order_no=np.arange(len(tx)))
            sv = tables["survey_responses"]
            sv.insert(0, "response_id", [f"R{i:08d}" for i in range(responses, responses + len(sv))])
            responses += len(sv)
            for name, df in (*tables.items(), ("truth", truth)):
                path = parts / f"{name}-{uid}-{b}.parquet"
                df.to_parquet(path, index=False)
                written.setdefault(name, []).append(path)
                counts[name] = counts.get(name, 0) + len(df)
            tx_selects.append(_transactions_sql(written["transactions"][-1], uid[:2].upper(), orders.get(uid, 0)))
            orders[uid] = orders.get(uid, 0) + len(tx)
            params["units"][uid] = _unit_parameters(uid)
            bar.set_postfix_str(f"{uid}: {first + size:,} customers")
            bar.update()
            del tables, truth, tx, sv

        with duckdb.connect() as con:  # transactions: 10M+ rows, formatted by DuckDB
            con.execute(f"COPY ({' UNION ALL '.join(tx_selects)}) TO ? (FORMAT parquet)",
                        [str(out / "transactions.parquet")])
        for name, files in written.items():
            if name == "transactions":
                continue
            target = out / "truth" / "customer_truth.parquet" if name == "truth" else out / f"{name}.parquet"
            df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
            if name != "truth":
                df = df[[c for c in contract.TABLES[name].column_names if c in df.columns]]
            df.to_parquet(target, index=False)
            del df
        (out / "truth" / "parameters.json").write_text(json.dumps(params, indent=2, default=str, ensure_ascii=False))
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    bar.update()
    bar.close()
    counts.pop("truth")
    return counts
