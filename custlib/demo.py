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
* **product categories**: an order's price tier follows the customer's tier shares; within the
  tier, the category is the archetype's preferred one with probability
  ``category_preference_strength``, else uniform;
* **campaigns** (:class:`CampaignSpec`): randomised ones keep a random holdout of their audience;
  a contacted customer who stays active through the conversion window places one extra order in
  it with a probability that depends on the value tier at sending (zero for a campaign without
  effect); one campaign has no holdout and contacts customers with more recent orders more often;
* **service tickets** (:class:`ServiceSpec`): buyers open tickets at a yearly rate by archetype; the
  first-response time depends on the service channel only (not on the customer); a first response
  slower than the SLA raises the hazard of lapsing by a planted factor per 24 h (the customer
  stops buying) and lowers later NPS and CSAT answers;
* personal fields (names, e-mails, phones) are fake.

Category preferences, tickets, service lapses and campaigns draw from random streams of their
own (:data:`STREAMS`), so the draws of everything else are those of a generator without them.

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
VALUE_TIERS = ("high", "mid", "low")
VALUE_TIER_CUTS = (0.80, 0.95)  # Pareto rule, as segmentation.value_tier_cuts in params/defaults.yaml
LAPSE_DAYS = 365  # a purchase followed by more than this many days without one starts a lapse
# (lifecycle.lapsed_after_days in params/defaults.yaml)
CONVERSION_WINDOW_DAYS = 30  # a campaign converts a customer who orders 1-30 days after sent_date
SEND_DAYS = 3  # a campaign's messages go out over its first days
RECENT_DAYS = 90  # recent activity that self-selected targeting looks at
HAZARD_BIN_DAYS = 14  # bins of the natural lapse hazard after a ticket
OPEN_RATES = {"email": 0.25, "push": 0.10, "call": 0.45}  # channels that track opens (a call: answered)
CLICK_RATES = {"email": 0.04, "push": 0.02, "sms": 0.03, "ads": 0.01}  # channels that track clicks; per contact
# random streams of their own, spawned from the batch's seed in this order (append new ones)
STREAMS = ("categories", "tickets", "service_lapses", "campaigns")
_DAY_KEY = 1 << 20  # customer number * _DAY_KEY + day: one sortable int64 per customer-day


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
class CampaignSpec:
    """A planted campaign of a unit.

    Eligible: customers whose first order is at least the conversion window before ``send``.
    Randomised (``holdout`` set): a random ``audience`` share of them is selected and a random
    ``holdout`` share of those is held out. Self-selected (``holdout`` None): a customer is
    contacted with probability logistic(``targeting["intercept"]`` + ``targeting["slope"]`` *
    log(1 + orders in the :data:`RECENT_DAYS` days before ``send``)). Messages go out over :data:`SEND_DAYS` days
    from ``send``. ``response``: by value tier at sending, the probability that a contacted
    customer who stays active through the window places one extra order in it because of the
    campaign (0 everywhere: no effect).
    """

    key: str  # campaign id after the unit's prefix
    name: str
    send: str  # ISO date of the first send
    channel: str  # contract.CAMPAIGN_CHANNELS
    offer: str | None
    cost_per_contact: float  # unit's currency: sending plus the offer's expected cost (discounts redeemed)
    response: dict[str, float]  # value tier (high, mid, low) -> probability of an extra order
    audience: float = 1.0
    holdout: float | None = 0.15
    targeting: dict[str, float] | None = None


@dataclass
class ServiceSpec:
    """Customer service of a unit and what a slow first response does.

    A buyer opens tickets at their archetype's ``ticket_rate`` per year from their first order
    until they drop out, between 08:00 and 22:00. Channel and category are drawn independently of
    the customer; first-response hours are lognormal by channel (median, sigma), so response
    times do not depend on the customer's value or tenure; resolution hours after the first
    response are lognormal by category. The delay of a customer's first ticket, ``min(max(hours - sla_hours, 0), cap_hours)``
    in days (never answered: the cap), multiplies the hazard of lapse after that ticket by
    ``lapse_hazard_ratio_per_day`` per day, and lowers the latent NPS (0-10 scale) and CSAT (1-5) of
    the customer's later surveys by ``nps_per_day`` and ``csat_per_day`` per day.
    """

    ticket_rate: dict[str, float]  # archetype -> tickets per year while active
    channels: dict[str, float]
    categories: dict[str, float]
    response_hours: dict[str, tuple[float, float]]  # channel -> lognormal (median, sigma) of hours
    resolve_hours: dict[str, tuple[float, float]]  # category -> lognormal (median, sigma) after the response
    never_answered: float  # share of tickets never answered
    unresolved: float  # share of answered tickets never resolved
    lapse_hazard_ratio_per_day: float
    nps_per_day: float
    csat_per_day: float
    sla_hours: float = 24.0
    cap_hours: float = 48.0


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
    category_preference: dict[str, tuple[str, str, str]]  # archetype -> preferred basic/standard/premium category
    campaigns: list[CampaignSpec]
    service: ServiceSpec
    category_preference_strength: float = 0.6  # P(the preferred category replaces the uniform draw)
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
        category_preference={"loyal_enthusiast": ("accessories", "apparel", "electronics"),
                             "deal_hunter": ("home_basics", "beauty", "designer"),
                             "premium_occasional": ("home_basics", "apparel", "designer"),
                             "one_time_browser": ("accessories", "beauty", "electronics")},
        campaigns=[
            CampaignSpec("C01", "Spring sale", "2024-03-05", "email", "15% off", 4.0,
                         {"high": 0.08, "mid": 0.30, "low": 0.10}, audience=0.6, holdout=0.15),
            CampaignSpec("C02", "Summer free shipping", "2024-06-11", "push", "free shipping", 2.0,
                         {"high": 0.06, "mid": 0.24, "low": 0.08}, audience=0.8, holdout=0.10),
            CampaignSpec("C03", "Back to school", "2024-09-03", "email", "20% off apparel", 5.0,
                         {"high": 0.10, "mid": 0.34, "low": 0.12}, audience=0.5, holdout=0.20),
            CampaignSpec("C04", "Brand newsletter", "2025-02-11", "email", None, 0.03,
                         {"high": 0.0, "mid": 0.0, "low": 0.0}, audience=0.7, holdout=0.15),
            CampaignSpec("C05", "Singles' Day VIP preview", "2025-10-21", "push", "early access", 1.0,
                         {"high": 0.12, "mid": 0.12, "low": 0.12}, holdout=None,
                         targeting={"intercept": -1.6, "slope": 1.4}),
        ],
        service=ServiceSpec(
            ticket_rate={"loyal_enthusiast": 0.3, "deal_hunter": 0.5, "premium_occasional": 0.4,
                         "one_time_browser": 0.6},
            channels={"chat": 0.40, "email": 0.35, "phone": 0.10, "social": 0.15},
            categories={"delivery": 0.30, "return": 0.25, "inquiry": 0.20, "complaint": 0.12, "billing": 0.05,
                        "technical": 0.08},
            response_hours={"chat": (0.05, 0.8), "email": (18.0, 0.9), "phone": (0.03, 0.5), "social": (5.0, 1.0)},
            resolve_hours={"delivery": (24.0, 0.8), "return": (72.0, 0.7), "inquiry": (2.0, 1.0),
                           "complaint": (48.0, 1.0), "billing": (24.0, 0.8), "technical": (36.0, 1.0)},
            never_answered=0.02, unresolved=0.05, lapse_hazard_ratio_per_day=1.5, nps_per_day=1.5,
            csat_per_day=0.5),
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
        category_preference={"regular_local": ("groceries", "kitchen", "wine"),
                             "bargain_family": ("household", "clothing", "jewellery"),
                             "premium_shopper": ("groceries", "clothing", "jewellery"),
                             "occasional_visitor": ("household", "kitchen", "wine")},
        campaigns=[
            CampaignSpec("C01", "春季会员日", "2024-03-12", "sms", "满200减30", 6.0,
                         {"high": 0.08, "mid": 0.15, "low": 0.25}, audience=0.6, holdout=0.15),
            CampaignSpec("C02", "端午节促销", "2024-06-04", "push", "第二件半价", 3.0,
                         {"high": 0.06, "mid": 0.12, "low": 0.20}, audience=0.8, holdout=0.10),
            CampaignSpec("C03", "中秋礼盒预订", "2024-08-27", "sms", "礼盒9折", 4.0,
                         {"high": 0.10, "mid": 0.18, "low": 0.30}, audience=0.5, holdout=0.20),
            CampaignSpec("C04", "品牌月刊", "2025-03-04", "push", None, 0.01,
                         {"high": 0.0, "mid": 0.0, "low": 0.0}, audience=0.7, holdout=0.15),
            CampaignSpec("C05", "双十一会员专享", "2025-10-28", "sms", "会员价", 2.0,
                         {"high": 0.12, "mid": 0.12, "low": 0.12}, holdout=None,
                         targeting={"intercept": -1.6, "slope": 1.4}),
        ],
        service=ServiceSpec(
            ticket_rate={"regular_local": 0.25, "bargain_family": 0.4, "premium_shopper": 0.3,
                         "occasional_visitor": 0.45},
            channels={"store": 0.40, "phone": 0.25, "social": 0.10, "email": 0.20, "chat": 0.05},
            categories={"return": 0.30, "inquiry": 0.30, "complaint": 0.20, "billing": 0.10, "other": 0.10},
            response_hours={"store": (0.1, 0.5), "phone": (0.03, 0.5), "social": (6.0, 1.0), "email": (30.0, 0.8),
                            "chat": (0.1, 0.8)},
            resolve_hours={"return": (24.0, 0.7), "inquiry": (1.0, 1.0), "complaint": (48.0, 1.0),
                           "billing": (24.0, 0.8), "other": (12.0, 1.0)},
            never_answered=0.015, unresolved=0.05, lapse_hazard_ratio_per_day=1.5, nps_per_day=1.5,
            csat_per_day=0.5),
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
        category_preference={"key_account": ("spare_parts", "software", "enterprise_systems"),
                             "growing_smb": ("consumables", "software", "consulting"),
                             "price_buyer": ("consumables", "equipment", "enterprise_systems"),
                             "dormant_trial": ("spare_parts", "equipment", "consulting")},
        campaigns=[
            CampaignSpec("C01", "Q1 equipment promotion", "2024-02-20", "email", "5% volume discount", 60.0,
                         {"high": 0.26, "mid": 0.12, "low": 0.08}, audience=0.6, holdout=0.15),
            CampaignSpec("C02", "Consumables reorder reminder", "2024-05-14", "call", "free delivery", 25.0,
                         {"high": 0.30, "mid": 0.14, "low": 0.10}, audience=0.8, holdout=0.10),
            CampaignSpec("C03", "Software upgrade offer", "2024-09-10", "email", "first year 30% off", 80.0,
                         {"high": 0.28, "mid": 0.13, "low": 0.08}, audience=0.5, holdout=0.20),
            CampaignSpec("C04", "Industry newsletter", "2025-01-21", "email", None, 0.1,
                         {"high": 0.0, "mid": 0.0, "low": 0.0}, audience=0.7, holdout=0.15),
            CampaignSpec("C05", "Year-end account review calls", "2025-10-14", "call", "year-end pricing", 25.0,
                         {"high": 0.12, "mid": 0.12, "low": 0.12}, holdout=None,
                         targeting={"intercept": -1.6, "slope": 1.4}),
        ],
        service=ServiceSpec(
            ticket_rate={"key_account": 0.8, "growing_smb": 1.0, "price_buyer": 1.0, "dormant_trial": 0.9},
            channels={"email": 0.50, "phone": 0.40, "chat": 0.10},
            categories={"technical": 0.30, "billing": 0.25, "delivery": 0.20, "inquiry": 0.15, "complaint": 0.10},
            response_hours={"email": (20.0, 0.9), "phone": (0.05, 0.5), "chat": (0.2, 0.8)},
            resolve_hours={"technical": (48.0, 1.0), "billing": (24.0, 0.8), "delivery": (36.0, 0.8),
                           "inquiry": (4.0, 1.0), "complaint": (72.0, 1.0)},
            never_answered=0.02, unresolved=0.05, lapse_hazard_ratio_per_day=1.5, nps_per_day=1.5,
            csat_per_day=0.5),
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


def _to_timestamp(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 with the time of day as the fraction -> datetime64[s]; NaN -> NaT."""
    days = np.asarray(days, dtype="float64")
    out = np.full(days.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    known = np.isfinite(days)
    out[known] = np.round(days[known] * 86400).astype("int64").astype("datetime64[s]")
    return out


def _value_tiers(revenue: np.ndarray) -> np.ndarray:
    """Pareto value tier (index into VALUE_TIERS) of each customer: sorted by revenue, largest
    first (ties in input order), high while the revenue of those before is below
    VALUE_TIER_CUTS[0] of the total, mid below VALUE_TIER_CUTS[1], else low; revenue of zero or
    less is low (the rule of custlib.segmentation.value_tiers)."""
    v = np.clip(np.asarray(revenue, dtype=float), 0, None)
    order = np.argsort(-v, kind="stable")
    total = v.sum()
    before = (np.cumsum(v[order]) - v[order]) / (total if total > 0 else 1.0)
    tier = np.where(before < VALUE_TIER_CUTS[0], 0, np.where(before < VALUE_TIER_CUTS[1], 1, 2))
    tier[v[order] <= 0] = 2
    out = np.empty(len(v), dtype=int)
    out[order] = tier
    return out


def _first_per_group(groups: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``groups``: the groups with a row where ``mask`` holds and the index of
    the first such row of each."""
    rows = np.flatnonzero(mask)
    if not rows.size:
        return groups[rows], rows
    first = rows[np.r_[True, groups[rows][1:] != groups[rows][:-1]]]
    return groups[first], first


class _Unit:
    """Draws one business unit: customers, transactions, members, surveys, leads, service
    tickets and campaigns."""

    def __init__(self, spec: UnitSpec, n: int, seeds: np.random.SeedSequence, start: date, end: date,
                 launch: date):
        self.spec, self.n = spec, n
        self.rng = np.random.default_rng(seeds)
        self.streams = dict(zip(STREAMS, (np.random.default_rng(s) for s in seeds.spawn(len(STREAMS)))))
        self.start, self.end, self.launch = _days(start), _days(end), _days(launch)
        # archetype x price tier -> the archetype's preferred category of that tier
        self.preferred = np.array([spec.category_preference[a.name] for a in spec.archetypes], dtype=object)

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
        self.attr_latent, self.sat, self.arch = attr_latent, sat, arch
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
        """The orders of the purchase events, then returns of some of them."""
        rng = self.rng
        ev = ev.sort_values(["customer_no", "day"], kind="stable").reset_index(drop=True)
        tx = self._orders(rng, ev["customer_no"].to_numpy(), ev["day"].to_numpy())
        m = len(tx)
        # returns: 1.5% of orders are partly returned 3-30 days later (negative amount)
        ret = tx[(rng.random(m) < 0.015)].copy()
        ret["order_day"] = ret["order_day"] + rng.integers(3, 31, len(ret))
        ret = ret[ret["order_day"] <= self.end]
        ret["amount"] = -np.round(ret["amount"] * rng.uniform(0.3, 1.0, len(ret)), 2)
        ret["discount"] = 0.0
        ret["quantity"] = 1
        return pd.concat([tx, ret], ignore_index=True)

    def _orders(self, rng: np.random.Generator, c: np.ndarray, days: np.ndarray) -> pd.DataFrame:
        """Orders of customers ``c`` (numbers) on ``days``: amount from the customer's Gamma-Gamma
        spend, discount from their propensity, price tier from their tier shares, then category
        (:meth:`_categories`), order channel and quantity from the unit's mix."""
        s, lat = self.spec, self.latent
        m = len(c)
        amount = rng.gamma(s.gamma_gamma["p"], 1.0 / lat["spend_rate"].to_numpy()[c])
        discounted = rng.random(m) < lat["discount_propensity"].to_numpy()[c]
        rate = np.where(discounted, rng.uniform(0.05, 0.3, m), 0.0)
        discount = amount * rate / (1 - rate)
        tier = _choice(rng, lat[["basic_share", "standard_share", "premium_share"]].to_numpy()[c])
        cat = self._categories(rng, tier, c)
        chans = np.array(list(s.order_channels))
        channel = chans[rng.choice(len(chans), m, p=list(s.order_channels.values()))]
        qty = 1 + rng.poisson(s.quantity_mean - 1, m)
        return pd.DataFrame({
            "customer_no": c, "business_unit": s.id, "order_day": days,
            "amount": np.round(amount, 2), "discount": np.round(discount, 2), "quantity": qty,
            "channel": pd.Categorical(channel, categories=list(s.order_channels)),
            "product_category": pd.Categorical(cat, categories=list(s.categories)),
        })

    def _categories(self, rng: np.random.Generator, tier: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Category of orders in price ``tier`` by customers ``c``: uniform within the tier
        (``rng``), replaced by the archetype's preferred category of the tier with probability
        ``category_preference_strength`` (the "categories" stream)."""
        s = self.spec
        cats = np.array(list(s.categories))
        cat_tier = np.array([TIERS.index(s.categories[k]) for k in cats])
        cat = np.empty(len(tier), dtype=object)
        for k in range(3):
            pool = cats[cat_tier == k]
            sel = tier == k
            cat[sel] = pool[rng.integers(0, len(pool), sel.sum())]
        prefer = self.streams["categories"].random(len(tier)) < s.category_preference_strength
        cat[prefer] = self.preferred[self.arch[c[prefer]], tier[prefer]]
        return cat

    def tickets(self) -> pd.DataFrame:
        """Service tickets (:class:`ServiceSpec`): a buyer opens tickets at their archetype's rate
        from their first order until they drop out (or the observation end), each on a day
        uniform in that period, between 08:00 and 22:00.

        Times are days since 1970-01-01 with the time of day as the fraction, to the minute
        (``day``: the opening day); a first response or resolution after the observation end is
        not known yet (NaN). Sets the latent ``first_ticket_day``, ``first_ticket_excess_days``
        (delay beyond the SLA, capped; never answered: the cap) and ``service_hazard_ratio`` of
        each customer."""
        rng, sv, lat = self.streams["tickets"], self.spec.service, self.latent
        buyers = np.flatnonzero(lat["buyer"].to_numpy())
        start = lat["first_day"].to_numpy()[buyers]
        active = np.minimum(lat["death_day"].to_numpy()[buyers], self.end + 1) - start
        per_day = np.array([sv.ticket_rate[a.name] for a in self.spec.archetypes])[self.arch[buyers]] / 365.25
        count = rng.poisson(per_day * active)
        c = np.repeat(buyers, count)
        n = len(c)
        day = np.floor(np.repeat(start, count) + rng.random(n) * np.repeat(active, count))
        opened = day + np.round((8 + 14 * rng.random(n)) * 60) / 1440
        channels, categories = list(sv.channels), list(sv.categories)
        ch = rng.choice(len(channels), n, p=list(sv.channels.values()))
        cat = rng.choice(len(categories), n, p=list(sv.categories.values()))
        median, sigma = np.array([sv.response_hours[k] for k in channels]).T
        hours = median[ch] * np.exp(sigma[ch] * rng.normal(size=n))
        answered = rng.random(n) >= sv.never_answered
        response = np.where(answered, np.ceil((opened + hours / 24) * 1440) / 1440, np.nan)
        median, sigma = np.array([sv.resolve_hours[k] for k in categories]).T
        resolved = np.ceil((response + median[cat] * np.exp(sigma[cat] * rng.normal(size=n)) / 24) * 1440) / 1440
        resolved[rng.random(n) < sv.unresolved] = np.nan
        delay = (response - opened) * 24  # hours, as the timestamps give it
        horizon = self.end + 1  # end of the last observed day
        out = pd.DataFrame({
            "customer_no": c, "day": day, "opened": opened,
            "first_response": np.where(response < horizon, response, np.nan),
            "resolved_time": np.where(resolved < horizon, resolved, np.nan),
            "channel": np.array(channels)[ch], "category": np.array(categories)[cat],
            "excess_days": np.where(answered, np.clip(delay - sv.sla_hours, 0, sv.cap_hours), sv.cap_hours) / 24,
        })
        out = out.sort_values(["customer_no", "opened"], kind="stable")
        first = out.drop_duplicates("customer_no")
        lat["first_ticket_day"] = np.nan
        lat["first_ticket_excess_days"] = np.nan
        lat.loc[first["customer_no"], "first_ticket_day"] = first["day"].to_numpy()
        lat.loc[first["customer_no"], "first_ticket_excess_days"] = first["excess_days"].to_numpy()
        lat["service_hazard_ratio"] = sv.lapse_hazard_ratio_per_day ** lat["first_ticket_excess_days"].fillna(0)
        return out.drop(columns="excess_days").reset_index(drop=True)

    def service_lapses(self, tx: pd.DataFrame) -> np.ndarray:
        """The last purchase day of customers who stop buying because of a slow first response
        (inf: none), drawn so that after the first ticket the hazard of lapse (a purchase followed
        by more than LAPSE_DAYS days without one) is the natural one times ``service_hazard_ratio``.

        Natural hazard, among customers whose first ticket leaves LAPSE_DAYS of follow-up: h0,
        the share whose lapse starts at their last purchase on or before the ticket day, and h(t)
        per day, t days after it (Nelson-Aalen in HAZARD_BIN_DAYS bins, the last bin carried on).
        A customer with ratio hr > 1 stops on the ticket day with probability
        1 - (1 - h0)^(hr - 1), else at each later purchase, t days after the ticket, with
        probability (hr - 1) h(t) / rate (at most 1), rate the purchase rate per day then: the extra
        hazard (hr - 1) h(t) does not depend on the customer, so the survivors of both groups stay
        alike and the ratio holds in the population. Sets the latent ``service_lapse_day``."""
        rng, lat = self.streams["service_lapses"], self.latent
        follow_end = self.end - LAPSE_DAYS
        ticket_day = lat["first_ticket_day"].to_numpy()
        hr = lat["service_hazard_ratio"].to_numpy()
        pos = tx["amount"].to_numpy() > 0
        key = np.sort(tx["customer_no"].to_numpy()[pos].astype(np.int64) * _DAY_KEY
                      + tx["order_day"].to_numpy()[pos].astype(np.int64))
        stop_day = np.full(self.n, np.inf)
        if not key.size:
            lat["service_lapse_day"] = stop_day
            return stop_day
        key = key[np.r_[True, key[1:] != key[:-1]]]  # purchase days
        c, day = key // _DAY_KEY, key % _DAY_KEY
        last = np.r_[c[1:] != c[:-1], True]
        starts_lapse = np.where(last, self.end - day > LAPSE_DAYS, np.r_[day[1:], 0] - day > LAPSE_DAYS)
        tau = ticket_day[c]
        before = day <= tau  # False where there is no ticket (NaN)
        anchor = before & ~(np.r_[before[1:], False] & ~last)  # last purchase on or before the ticket
        anchor_day = np.full(self.n, np.nan)
        anchor_day[c[anchor]] = day[anchor]
        lapsed, row = _first_per_group(c, (day >= anchor_day[c]) & starts_lapse)
        lapse_day = np.full(self.n, np.inf)
        lapse_day[lapsed] = day[row]

        followed = ticket_day <= follow_end
        event = followed & np.isfinite(lapse_day)
        exit_t = np.where(event, np.maximum(lapse_day - ticket_day, 0), follow_end - ticket_day)[followed]
        event = event[followed]
        h0 = (event & (exit_t == 0)).sum() / max(followed.sum(), 1)
        lo = 1 + HAZARD_BIN_DAYS * np.arange(int(np.ceil((self.end - self.start) / HAZARD_BIN_DAYS)) + 1)
        exposure = np.clip(np.minimum(exit_t[:, None], lo + HAZARD_BIN_DAYS - 1) - lo + 1, 0, None).sum(axis=0)
        events = np.bincount(((exit_t[event & (exit_t > 0)] - 1) // HAZARD_BIN_DAYS).astype(int),
                             minlength=len(lo))[:len(lo)]
        known = np.flatnonzero(exposure > 0)
        hazard = np.full(len(lo), 0.0)
        if known.size:
            hazard[known] = events[known] / exposure[known]
            hazard[known[-1] + 1:] = hazard[known[-1]]

        slow = hr > 1
        stop_now = slow & (rng.random(self.n) < 1 - (1 - h0) ** (hr - 1))
        stop_day[stop_now] = ticket_day[stop_now]
        later = slow[c] & ~stop_now[c] & (day > tau)
        cl, dl = c[later], day[later]
        enrolled = lat["enroll_day"].to_numpy()[cl] < dl  # NaN (not a member): False
        rate = lat["purchase_rate"].to_numpy()[cl] / 7 * (1 + np.where(enrolled, lat["loyalty_uplift"].to_numpy()[cl], 0))
        t_bin = np.minimum((dl - tau[later] - 1) // HAZARD_BIN_DAYS, len(lo) - 1).astype(int)
        stops = rng.random(cl.size) < (hr[cl] - 1) * hazard[t_bin] / rate
        stopped, row = _first_per_group(cl, stops)
        stop_day[stopped] = dl[row]
        lat["service_lapse_day"] = stop_day
        return stop_day

    def surveys(self, tx: pd.DataFrame) -> pd.DataFrame:
        """One survey from a share of buyers, a few days after one of their purchases
        (``order_day``); answers after the customer's first ticket are lowered by its delay."""
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
        after_ticket = day > self.latent["first_ticket_day"].to_numpy()[c]
        slow = np.where(after_ticket, self.latent["first_ticket_excess_days"].to_numpy()[c], 0.0)
        nps = np.clip(np.round(7.6 + 2.0 * z + 0.6 * rng.normal(size=k) - s.service.nps_per_day * slow), 0, 10).astype(int)
        csat = np.clip(np.round(3.7 + 0.9 * z + 0.5 * rng.normal(size=k) - s.service.csat_per_day * slow), 1, 5).astype(int)
        out = pd.DataFrame({"customer_no": c, "business_unit": s.id, "response_date": _to_date(day),
                            "nps": nps, "csat": csat, "order_day": pick["order_day"].to_numpy()})
        for j, a in enumerate(contract.SURVEY_ATTRIBUTES):
            out[a] = ratings[:, j]
        out["comment"] = self._comments(nps, ratings)
        return out.sort_values("response_date", kind="stable").reset_index(drop=True)

    def campaigns(self, tx: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The unit's campaigns in send order (:class:`CampaignSpec`) on the orders ``tx`` (after
        the service lapses): contacts (``customer_no``, ``sent_day``), the extra orders they cause,
        and per contact the truth: value tier at sending, ``active`` (neither dropped out nor
        lapsed through the window), ``natural_conversion`` (an order in the window without the
        campaign), the response probability and the expected effects on conversion and on spend
        in the window (currency). Each campaign sees the extra orders of the earlier ones."""
        rng, s, lat = self.streams["campaigns"], self.spec, self.latent
        w = CONVERSION_WINDOW_DAYS
        buyer, first = lat["buyer"].to_numpy(), lat["first_day"].to_numpy()
        death, lapse = lat["death_day"].to_numpy(), lat["service_lapse_day"].to_numpy()
        orders = [tx[["customer_no", "order_day", "amount"]]]
        contacts, truth, extra = [], [], []
        for cs in sorted(s.campaigns, key=lambda x: x.send):
            send = _days(date.fromisoformat(cs.send))
            o = pd.concat(orders, ignore_index=True)
            oc, od, amount = (o[k].to_numpy() for k in ("customer_no", "order_day", "amount"))
            keys = np.sort((oc * _DAY_KEY + od.astype(np.int64))[amount > 0])
            eligible = np.flatnonzero(buyer & (first <= send - w))
            revenue = np.bincount(oc[od < send], weights=amount[od < send], minlength=self.n)
            tier = _value_tiers(revenue[eligible])
            if cs.holdout is None:
                base = eligible.astype(np.int64) * _DAY_KEY
                recent = np.searchsorted(keys, base + send, "left") - np.searchsorted(keys, base + send - RECENT_DAYS, "left")
                logit = cs.targeting["intercept"] + cs.targeting["slope"] * np.log1p(recent)
                chosen = rng.random(eligible.size) < 1 / (1 + np.exp(-logit))
            else:
                chosen = rng.random(eligible.size) < cs.audience
            sel, tier = eligible[chosen], tier[chosen]
            k = sel.size
            held = rng.random(k) < cs.holdout if cs.holdout is not None else np.zeros(k, dtype=bool)
            sent = send + rng.integers(0, SEND_DAYS, k)
            base = sel.astype(np.int64) * _DAY_KEY + sent
            natural = np.searchsorted(keys, base + w, "right") > np.searchsorted(keys, base, "right")
            active = (death[sel] > sent + w) & (lapse[sel] > sent + w)
            q = np.array([cs.response[t] for t in VALUE_TIERS])[tier]
            responds = ~held & active & (rng.random(k) < q)
            day = (sent[responds] + rng.integers(1, w + 1, responds.sum())).astype(float)
            extra.append(self._orders(rng, sel[responds], day))
            orders.append(extra[-1][["customer_no", "order_day", "amount"]])
            opened, clicked = np.full(k, np.nan), np.full(k, np.nan)
            if cs.channel in OPEN_RATES:
                opened[~held] = rng.random((~held).sum()) < OPEN_RATES[cs.channel]
            if cs.channel in CLICK_RATES:
                share = CLICK_RATES[cs.channel] / OPEN_RATES.get(cs.channel, 1.0)  # of those who opened
                clicked[~held] = (np.nan_to_num(opened[~held], nan=1.0) == 1) & (rng.random((~held).sum()) < share)
            cid = campaign_id(s.id, cs)
            group = None if cs.holdout is None else np.where(held, "holdout", "treatment")
            contacts.append(pd.DataFrame({
                "campaign_id": cid, "customer_no": sel, "business_unit": s.id, "channel": cs.channel,
                "sent_day": sent, "group": group, "opened": pd.array(opened, dtype="Float64").astype("Int64"),
                "clicked": pd.array(clicked, dtype="Float64").astype("Int64")}))
            truth.append(pd.DataFrame({
                "campaign_id": cid, "customer_no": sel, "group": group,
                "value_tier": np.array(VALUE_TIERS)[tier], "active": active, "natural_conversion": natural,
                "response_probability": q, "expected_conversion_effect": q * active * ~natural,
                "expected_spend_effect": q * active * lat["mean_spend"].to_numpy()[sel],
                "extra_order": responds}))
        return (pd.concat(contacts, ignore_index=True), pd.concat(extra, ignore_index=True),
                pd.concat(truth, ignore_index=True))

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


def _draw_batch(uid: str, customers: int, first: int, first_lead: int, first_ticket: int,
                seeds: np.random.SeedSequence, start: date, end: date,
                launch: date) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, int]]:
    """One batch of a unit: customers numbered from ``first`` (leads from ``first_lead``, tickets
    from ``first_ticket``). Returns the contract tables (transactions still with ``customer_no``
    and ``order_day``; campaigns are written once per unit, by :func:`generate`), the truth
    tables (per customer, per campaign contact) and counts of what the service lapses and the
    campaigns changed."""
    spec = UNITS[uid]
    u = _Unit(spec, customers, seeds, start, end, launch)
    leads = u.leads()
    won = leads["won_date"].notna().to_numpy()
    won_days = np.array([_days(d) for d in leads.loc[won, "won_date"]], dtype=float)
    cust = u.customers(won_days)
    tx = u.transactions(u.purchases())
    tickets = u.tickets()
    sv = u.surveys(tx)
    # a customer who stops because of slow service: no later orders, tickets, or surveys of later orders
    stop = u.service_lapses(tx)
    kept = tx["order_day"].to_numpy() <= stop[tx["customer_no"].to_numpy()]
    positive = tx["amount"].to_numpy() > 0
    stats = {"orders_natural": int(positive.sum()), "orders_removed_by_service_lapses": int((positive & ~kept).sum()),
             "tickets": len(tickets), "first_ticket_customers": int(u.latent["first_ticket_day"].notna().sum()),
             "slow_first_tickets": int((u.latent["service_hazard_ratio"] > 1).sum()),
             "service_lapses": int(np.isfinite(stop).sum())}
    tx = tx[kept]
    tickets = tickets[tickets["day"].to_numpy() <= stop[tickets["customer_no"].to_numpy()]]
    sv = sv[sv["order_day"].to_numpy() <= stop[sv["customer_no"].to_numpy()]].drop(columns="order_day")
    contacts, extra, contact_truth = u.campaigns(tx)
    stats["campaign_extra_orders"] = len(extra)
    tx = pd.concat([tx, extra], ignore_index=True)
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
    truth["first_ticket_date"] = pd.to_datetime(_to_date(lat["first_ticket_day"]))
    truth["service_lapse_date"] = pd.to_datetime(_to_date(lat["service_lapse_day"]))
    truth = truth.drop(columns=["first_day", "enroll_day", "death_day", "first_ticket_day", "service_lapse_day"])
    tickets = tickets.sort_values(["opened", "customer_no"], kind="stable")
    service = pd.DataFrame({
        "ticket_id": _ids(prefix + "T", first_ticket + np.arange(len(tickets))),
        "customer_id": ids[tickets["customer_no"].to_numpy()], "business_unit": uid,
        "opened_at": _to_timestamp(tickets["opened"]), "first_response_at": _to_timestamp(tickets["first_response"]),
        "resolved_at": _to_timestamp(tickets["resolved_time"]),
        "channel": tickets["channel"].to_numpy(), "category": tickets["category"].to_numpy(),
        "resolved": tickets["resolved_time"].notna().to_numpy().astype(int)})
    contacts.insert(1, "customer_id", ids[contacts.pop("customer_no").to_numpy()])
    contacts.insert(4, "sent_date", _to_date(contacts.pop("sent_day")))
    contact_truth.insert(1, "customer_id", ids[contact_truth.pop("customer_no").to_numpy()])
    contact_truth.insert(2, "business_unit", uid)
    tables = {"customers": cust.drop(columns="customer_no"), "transactions": tx, "loyalty_members": members,
              "survey_responses": sv, "leads": leads, "campaign_contacts": contacts, "service_tickets": service}
    return tables, {"truth": truth, "campaign_truth": contact_truth}, stats


def campaign_id(uid: str, campaign: CampaignSpec) -> str:
    """The id of a unit's planted campaign, e.g. ``ONC01``."""
    return f"{uid[:2].upper()}{campaign.key}"


def _campaigns_table(uid: str) -> pd.DataFrame:
    """The unit's campaigns: each runs from its first send to the end of the conversion window
    of its last send."""
    spec = UNITS[uid]
    start = np.array([_days(date.fromisoformat(c.send)) for c in spec.campaigns], dtype=float)
    return pd.DataFrame({
        "campaign_id": [campaign_id(uid, c) for c in spec.campaigns], "business_unit": uid,
        "campaign_name": [c.name for c in spec.campaigns], "start_date": _to_date(start),
        "end_date": _to_date(start + SEND_DAYS - 1 + CONVERSION_WINDOW_DAYS),
        "offer": [c.offer for c in spec.campaigns], "cost_per_contact": [c.cost_per_contact for c in spec.campaigns]})


def _campaign_effects(uid: str, contact_truth: pd.DataFrame) -> dict:
    """Per campaign of the unit: contacts, holdout and the true effects, overall and by value tier
    at sending. A randomised campaign's true effect is the mean expected effect over treatment and
    holdout (what the difference in means estimates); a self-selected campaign's is the mean over
    the contacted (the effect on the treated). Conversion: difference in the share with an order
    1-30 days after sending; spend: currency per customer in that window."""
    out = {}
    for cs in UNITS[uid].campaigns:
        cid = campaign_id(uid, cs)
        ct = contact_truth[contact_truth["campaign_id"] == cid]
        by_tier = {t: {"contacts": len(g), "response_probability": cs.response[t],
                       "conversion_uplift": float(g["expected_conversion_effect"].mean()),
                       "spend_uplift": float(g["expected_spend_effect"].mean())}
                   for t, g in ct.groupby("value_tier") if len(g)}
        randomised = cs.holdout is not None
        effect = {
            "randomised": randomised,
            "contacts": len(ct),
            "holdout": int((ct["group"] == "holdout").sum()),
            "planted_holdout_share": cs.holdout,
            "conversion_uplift": float(ct["expected_conversion_effect"].mean()) if len(ct) else None,
            "spend_uplift": float(ct["expected_spend_effect"].mean()) if len(ct) else None,
            "extra_orders": int(ct["extra_order"].sum()),
            "by_value_tier": by_tier,
            "largest_uplift_segment": (max(by_tier, key=lambda t: by_tier[t]["conversion_uplift"], default=None)
                                       if len(set(cs.response.values())) > 1 else None),
        }
        if not randomised:
            effect["effect_meaning"] = "effect on the contacted (ATT); there is no holdout"
        out[cid] = effect
    return out


def _unit_parameters(uid: str) -> dict:
    spec = asdict(UNITS[uid])
    spec["independent_of_archetype"] = ["gender"]
    spec["loyalty_uplift_meaning"] = "relative increase of the purchase rate while active, from the day after enrollment"
    spec["funnel_meaning"] = "P(reach next stage | decision taken at this stage)"
    spec["bgnbd_units"] = "weeks"
    spec["category_shares_by_archetype"] = _category_shares(UNITS[uid])
    spec["campaign_meaning"] = (
        f"conversion: an order 1-{CONVERSION_WINDOW_DAYS} days after sent_date; a contacted customer active "
        "through that window places one extra order in it with the campaign's response probability for their "
        f"value tier at sending (Pareto cuts {VALUE_TIER_CUTS} of net revenue before the send, among customers "
        f"whose first order is at least {CONVERSION_WINDOW_DAYS} days before it); self-selected targeting counts "
        f"orders in the {RECENT_DAYS} days before the send")
    spec["service_meaning"] = (
        "the first ticket of a customer: delay = min(max(first-response hours - sla_hours, 0), cap_hours) / 24 "
        "days (never answered: the cap); after its opening day the hazard of lapse (a purchase followed by more "
        f"than {LAPSE_DAYS} days without one, as lifecycle.lapsed_after_days) is multiplied by "
        "lapse_hazard_ratio_per_day ** delay, the same for every customer (response times do not depend on the "
        "customer); surveys answered after that day have NPS lowered by nps_per_day * delay and CSAT by "
        "csat_per_day * delay (before rounding to the scale)")
    return spec


def _category_shares(spec: UnitSpec) -> dict[str, dict[str, float]]:
    """Expected share of each product category in an archetype's orders: the mean of its price
    tier shares (Dirichlet weights normalised) times the within-tier probability (preferred:
    strength + (1 - strength) / categories of the tier, else (1 - strength) / categories)."""
    out = {}
    rho = spec.category_preference_strength
    for a in spec.archetypes:
        tier_share = np.array(a.tier_weights) / sum(a.tier_weights)
        shares = {}
        for cat, tier in spec.categories.items():
            k = TIERS.index(tier)
            in_tier = sum(t == tier for t in spec.categories.values())
            shares[cat] = float(tier_share[k] * ((1 - rho) / in_tier + rho * (spec.category_preference[a.name][k] == cat)))
        out[a.name] = shares
    return out


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
    tx_selects, counts, responses, stats = [], {}, 0, {}
    params = {"observation_end": end.isoformat(), "data_start": start.isoformat(),
              "programme_launch": launch.isoformat(), "units": {}}
    batches = [(uid, b, first) for uid in units for b, first in enumerate(range(0, customers, BATCH_CUSTOMERS))]
    bar = tqdm(total=len(batches) + 1, desc="demo data", unit="step", disable=not progress)
    try:
        orders, leads, tickets = {}, {}, {}
        for uid, b, first in batches:
            k = list(UNITS).index(uid)
            seeds = np.random.SeedSequence([seed, k, b] if b else [seed, k])
            size = min(BATCH_CUSTOMERS, customers - first)
            tables, truths, batch_stats = _draw_batch(uid, size, first, leads.get(uid, 0), tickets.get(uid, 0),
                                                      seeds, start, end, launch)
            if b == 0:
                tables["campaigns"] = _campaigns_table(uid)
            leads[uid] = leads.get(uid, 0) + len(tables["leads"])
            tickets[uid] = tickets.get(uid, 0) + len(tables["service_tickets"])
            unit_stats = stats.setdefault(uid, {})
            for key, value in batch_stats.items():
                unit_stats[key] = unit_stats.get(key, 0) + value
            tx = tables["transactions"]
            tx = tx.iloc[np.lexsort((tx["customer_no"].to_numpy(), tx["order_day"].to_numpy()))]
            tables["transactions"] = tx.assign(order_no=np.arange(len(tx)))
            sv = tables["survey_responses"]
            sv.insert(0, "response_id", [f"R{i:08d}" for i in range(responses, responses + len(sv))])
            responses += len(sv)
            for name, df in (*tables.items(), *truths.items()):
                path = parts / f"{name}-{uid}-{b}.parquet"
                df.to_parquet(path, index=False)
                written.setdefault(name, []).append(path)
                counts[name] = counts.get(name, 0) + len(df)
            tx_selects.append(_transactions_sql(written["transactions"][-1], uid[:2].upper(), orders.get(uid, 0)))
            orders[uid] = orders.get(uid, 0) + len(tx)
            params["units"][uid] = _unit_parameters(uid)
            bar.set_postfix_str(f"{uid}: {first + size:,} customers")
            bar.update()
            del tables, truths, tx, sv

        with duckdb.connect() as con:  # transactions: 10M+ rows, formatted by DuckDB
            con.execute(f"COPY ({' UNION ALL '.join(tx_selects)}) TO ? (FORMAT parquet)",
                        [str(out / "transactions.parquet")])
        truth_files = {"truth": "customer_truth.parquet", "campaign_truth": "campaign_truth.parquet"}
        for name, files in written.items():
            if name == "transactions":
                continue
            target = out / "truth" / truth_files[name] if name in truth_files else out / f"{name}.parquet"
            df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
            if name in contract.TABLES:
                df = df[[c for c in contract.TABLES[name].column_names if c in df.columns]]
            if name == "campaign_truth":
                for uid in units:
                    params["units"][uid]["campaign_effects"] = _campaign_effects(uid, df[df["business_unit"] == uid])
            df.to_parquet(target, index=False)
            del df
        for uid, unit_stats in stats.items():
            orders_all = unit_stats["orders_natural"] - unit_stats["orders_removed_by_service_lapses"] \
                + unit_stats["campaign_extra_orders"]
            params["units"][uid]["realised"] = {
                **unit_stats, "campaign_extra_order_share": unit_stats["campaign_extra_orders"] / orders_all,
                "orders_removed_share": unit_stats["orders_removed_by_service_lapses"] / unit_stats["orders_natural"]}
        (out / "truth" / "parameters.json").write_text(json.dumps(params, indent=2, default=str, ensure_ascii=False))
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    bar.update()
    bar.close()
    counts.pop("truth")
    counts.pop("campaign_truth")
    return counts
