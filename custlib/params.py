"""Run parameters: ``params/defaults.yaml`` overlaid by ``params/business_units/<id>.yaml``.

Validated with pydantic; an unknown key or a bad value raises :class:`CustlibDataError`
(``kind="params"``) naming the file and the key.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from custlib.errors import CustlibDataError
from custlib.mapping import SourceMapping

UNIT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
PriceTier = Literal["basic", "standard", "premium"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupLabel(_Strict):
    """A group's name in the report, with the client's Chinese term."""

    name: str
    chinese: str = ""

    @property
    def text(self) -> str:
        return f"{self.name} {self.chinese}".strip()


class RfmSegmentRule(GroupLabel):
    """One named RFM segment: inclusive score ranges (1-5) of recency, frequency and monetary."""

    r: tuple[int, int] = (1, 5)
    f: tuple[int, int] = (1, 5)
    m: tuple[int, int] = (1, 5)


class ClassRule(GroupLabel):
    """A class and its rule: a pandas query on the per-customer table (see segmentation.customer_table)."""

    rule: str


class ClassDimension(_Strict):
    """One classification of the client's documents: rules tried in order, first match wins."""

    title: str
    chinese: str = ""
    rules: list[ClassRule]
    otherwise: GroupLabel


class PlaybookAction(GroupLabel):
    """A recommended action; its key names the exported target list."""

    description: str = ""


class ClusteringParams(_Strict):
    """k-means on standardized log recency, frequency and monetary plus optional features."""

    monetary: Literal["avg_order_value", "revenue"] = Field(
        "avg_order_value", description="M of the clustering: average order value (as in Fader, Hardie "
                                       "& Lee 2005) or total net revenue")
    extra_features: list[Literal["discounted_share", "discount_rate", "basic_share", "standard_share",
                                 "premium_share", "tenure_days"]] = Field(default_factory=list)
    k_min: int = Field(2, ge=2)
    k_max: int = Field(8, ge=2)
    silhouette_sample: int = Field(3000, ge=100, description="customers in the silhouette sample")
    bootstrap: int = Field(20, ge=2, description="bootstrap refits for the stability check")
    seed: int = 42
    words: dict[str, tuple[str, str]] = Field(
        default_factory=dict, description="feature -> (word when low, word when high) for cluster names")

    @model_validator(mode="after")
    def _range(self) -> "ClusteringParams":
        if self.k_max < self.k_min:
            raise ValueError("k_max must be at least k_min")
        return self


class SegmentationParams(_Strict):
    """Parameters of the segmentation analysis (notebook 01)."""

    rfm_segments: list[RfmSegmentRule] = Field(default_factory=list, description="first matching rule wins; "
                                        "every (r, f, m) score combination must match a rule")
    value_tier_cuts: tuple[float, float] = Field((0.80, 0.95), description="cumulative revenue shares "
                                                 "ending the high and the mid tier (Pareto / ABC)")
    value_tiers: tuple[GroupLabel, GroupLabel, GroupLabel] = (GroupLabel(name="high"), GroupLabel(name="mid"), GroupLabel(name="low"))
    age_bands: list[int] = Field(default_factory=lambda: [25, 35, 45, 55, 65],
                                 description="upper-exclusive age band edges in years")
    frequency_window_months: int = Field(12, ge=1, description="window for orders per month")
    classes: dict[str, ClassDimension] = Field(default_factory=dict)
    clustering: ClusteringParams = ClusteringParams()
    actions: dict[str, PlaybookAction] = Field(default_factory=dict)
    playbook: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="segment field -> group -> action keys")
    migration_from: date | None = Field(None, description="earlier observation date; "
                                        "empty = migration_months before the observation end")
    migration_months: int = Field(6, ge=1)
    profile_alpha: float = Field(0.05, gt=0, lt=1, description="family-wise error rate of the profiles")

    @model_validator(mode="after")
    def _consistent(self) -> "SegmentationParams":
        if self.rfm_segments:
            for r in range(1, 6):
                for f in range(1, 6):
                    for m in range(1, 6):
                        if not any(s.r[0] <= r <= s.r[1] and s.f[0] <= f <= s.f[1] and s.m[0] <= m <= s.m[1]
                                   for s in self.rfm_segments):
                            raise ValueError(f"rfm_segments: no rule matches r={r}, f={f}, m={m}")
        lo, hi = self.value_tier_cuts
        if not 0 < lo < hi < 1:
            raise ValueError("value_tier_cuts must satisfy 0 < high < mid < 1")
        for field_name, groups in self.playbook.items():
            for group, keys in groups.items():
                unknown = [k for k in keys if k not in self.actions]
                if unknown:
                    raise ValueError(f"playbook.{field_name}.{group}: unknown action {unknown[0]!r}")
        names = {s.name for s in self.rfm_segments}
        unknown = [g for g in self.playbook.get("rfm_segment", {}) if g not in names]
        if unknown:
            raise ValueError(f"playbook.rfm_segment: unknown segment {unknown[0]!r}")
        return self


LIFECYCLE_STAGES = ("prospect", "new", "repeat", "loyal", "at_risk", "lapsed")


class LifecycleStage(_Strict):
    """How the report names a lifecycle stage, in the client's words, and what to do about it."""

    label: str
    chinese: str = ""
    phase: str = ""
    strategy: str = ""
    strategy_chinese: str = Field("", description="The strategy in Chinese (reports with language zh)")


class LifecycleParams(_Strict):
    """Parameters of the lifecycle analysis (notebook 02). Days are calendar days."""

    new_within_days: int = Field(90, ge=1, description="new: first purchase within this many days")
    lapsed_after_days: int = Field(365, ge=1, description="lapsed: no purchase for longer than this")
    at_risk_gap_factor: float = Field(2.0, gt=0, description="at risk: silent longer than this "
                                                             "multiple of the own mean purchase gap")
    at_risk_p_alive: float = Field(0.5, ge=0, le=1, description="at risk: the purchase model's P(alive) below this")
    loyal_min_purchases: int = Field(5, ge=2, description="loyal: at least this many purchase days")
    loyal_recent_days: int = Field(180, ge=1, description="loyal: last purchase within this many days")
    stages: dict[Literal[LIFECYCLE_STAGES], LifecycleStage] = Field(default_factory=dict)
    retention_months: list[int] = Field(default_factory=lambda: [3, 6, 12])
    clv_horizon_months: int = Field(12, ge=1, le=120)
    annual_discount_rate: float = Field(0.10, ge=0, lt=1)
    holdout_weeks: int = Field(26, ge=4, description="validation window at the end of the data")
    purchase_occasions: Literal["continuous", "yearly", "quarterly", "monthly"] = Field(
        "continuous", description="when purchases happen: continuous (any day), or at discrete calendar "
                                  "occasions (annual events, renewals, donations), where BG/BB joins the model "
                                  "comparison on occasions with a purchase")
    purchase_model: Literal["auto", "bg_nbd", "pareto_nbd", "bg_bb"] = Field(
        "auto", description="purchase model of the CLV, P(alive) and churn list: auto = the lowest holdout "
                            "error among the models that converged (near ties by BIC), or force one "
                            "(bg_bb needs discrete purchase_occasions)")
    spend_correlation_warning: float = Field(
        0.1, gt=0, lt=1, description="warn when the spend-frequency correlation (Pearson) of repeat buyers is at "
                                     "least this far from 0 and its 95% CI excludes 0 (Gamma-Gamma assumes 0)")
    churn_value_quantile: float = Field(0.8, ge=0, lt=1, description="valuable: value if retained "
                                                                     "at or above this quantile")
    funnel_stages: dict[str, str] = Field(
        default_factory=lambda: {"lead": "", "qualified": "", "opportunity": "", "won": ""},
        description="funnel stages in order (contract stage names) -> client's term")

    @model_validator(mode="after")
    def _consistent(self) -> "LifecycleParams":
        if self.new_within_days >= self.lapsed_after_days:
            raise ValueError("new_within_days must be shorter than lapsed_after_days")
        if list(self.funnel_stages) != ["lead", "qualified", "opportunity", "won"]:
            raise ValueError("funnel_stages must be lead, qualified, opportunity, won in this order")
        if self.purchase_model == "bg_bb" and self.purchase_occasions == "continuous":
            raise ValueError("purchase_model bg_bb (BG/BB) models purchases at discrete occasions: set "
                             "purchase_occasions to yearly, quarterly or monthly, or choose another model")
        return self

    def stage_label(self, stage: str) -> str:
        """'Loyal 忠诚客户' (the key itself when no label is configured)."""
        s = self.stages.get(stage)
        return f"{s.label} {s.chinese}".strip() if s else stage


LoyaltyTier = Literal["points", "vip"]


class LoyaltyParams(_Strict):
    """Parameters of the loyalty-impact analysis (notebook 03)."""

    terms: dict[str, str] = Field(
        default_factory=lambda: {"programme": "客户忠诚度计划", "points": "积分", "vip": "VIP会员"},
        description="The client's names for the programme and its tiers (report wording)")
    margin_rate: float = Field(0.35, gt=0, le=1, description="Gross margin as a share of net revenue")
    cost_per_member_month: dict[LoyaltyTier, float] = Field(
        default_factory=lambda: {"points": 2.0, "vip": 20.0},
        description="Service and benefit cost per member and month, currency")
    points_per_currency: float = Field(1.0, ge=0, description="Points earned per unit of currency spent")
    point_value: float = Field(0.01, ge=0, description="Currency value of one redeemed point")
    redemption_rate: float = Field(0.7, ge=0, le=1,
                                   description="Share of earned points expected to be redeemed (points liability)")
    leads: int = Field(6, ge=2, le=12, description="Event study: months shown before enrollment")
    lags: int = Field(12, ge=1, le=24, description="Event study: months after enrollment; the overall "
                                                   "effect averages months 1..lags")
    pre_months: int = Field(6, ge=1, le=12, description="Months before enrollment that form the baseline")
    post_months: int = Field(6, ge=1, le=12, description="Outcome window of the propensity methods, months")
    retention_months: int = Field(12, ge=3, le=18, description="Retention: still buying this many months "
                                                               "after enrollment")
    regular_buyer_orders: float = Field(1.0, gt=0, description="Retention is measured on customers with at "
                                                               "least this many orders a month before enrollment")
    control_group: Literal["later_members", "all_not_yet_enrolled"] = Field(
        "later_members", description="Comparison group of the main estimates")
    main_estimator: Literal["cohort_did", "aipw"] = Field("cohort_did", description="Estimate in the headline")
    propensity_trim: float = Field(0.01, ge=0, lt=0.5, description="Drop rows with propensity > 1 - trim")
    matching_neighbours: int = Field(1, ge=1, le=10, description="Controls per treated customer in matching")
    matching_caliper: float | None = Field(0.2, gt=0, description="Matching caliper, in standard deviations of the "
                                                                  "logit propensity score (null: none)")


class SatisfactionParams(_Strict):
    """Parameters of the satisfaction analysis (notebook 04)."""

    promoter_min: int = Field(9, ge=0, le=10, description="NPS scores from this value up: promoters 推荐者")
    detractor_max: int = Field(6, ge=0, le=10, description="NPS scores up to this value: detractors 贬损者")
    nps_group_names: dict[Literal["promoter", "passive", "detractor"], str] = Field(
        default_factory=lambda: {"promoter": "推荐者", "passive": "被动者", "detractor": "贬损者"},
        description="Report names of the NPS groups")
    csat_satisfied_min: int = Field(4, ge=1, le=5, description="CSAT is the share rating at least this "
                                                                "(top-2-box on the 1-5 scale)")
    small_sample_n: int | None = Field(None, ge=1, description="Overrides the unit's small_sample_n here")
    compare_months: int = Field(6, ge=1, le=18, description="Change test: the last N months against the "
                                                            "N months before")
    driver_outcome: Literal["nps", "csat"] = Field("nps", description="Overall rating explained by the "
                                                                      "attribute ratings")
    bootstrap_reps: int = Field(500, ge=50, description="Resamples for the driver importance intervals")
    bootstrap_seed: int = 2025
    horizon_days: int = Field(365, ge=30, description="Revenue at stake: lapses within this many days "
                                                      "of the survey")
    top_terms: int = Field(10, ge=1, description="Distinctive comment terms shown per group and language")

    @model_validator(mode="after")
    def _groups_do_not_overlap(self) -> "SatisfactionParams":
        if self.detractor_max >= self.promoter_min:
            raise ValueError("detractor_max must be below promoter_min")
        return self


class MarketingParams(_Strict):
    """Parameters of the marketing analysis (notebook 05): campaign effects."""

    window_days: int = Field(30, ge=1, le=365, description="Conversion window: a contacted customer converts "
                                                           "with an order 1..window_days days after sending")
    margin_rate: float | None = Field(None, gt=0, le=1, description="Gross margin as a share of net revenue for "
                                                                    "campaign ROI (null: loyalty.margin_rate)")
    propensity_trim: float = Field(0.01, ge=0, lt=0.5, description="Campaigns without holdout: drop rows with "
                                                                   "propensity > 1 - trim")
    matching_caliper: float | None = Field(0.2, gt=0, description="Matching caliper, in standard deviations of the "
                                                                  "logit propensity score (null: none)")
    recommendation_holdout_days: int = Field(180, ge=1, le=3650, description="Next best category: evaluated on "
                                                                         "purchases in the last N days, fitted "
                                                                         "on those before")
    top_k: int = Field(3, ge=1, le=50, description="Next best category: categories recommended per customer")
    recommendation_segment_weight: float = Field(
        0.0, ge=0, le=1, description="Next best category: weight of the share of the customer's value tier who "
                                     "bought a category, blended into the co-purchase score (0: co-purchase only)")


class ServiceParams(_Strict):
    """Parameters of the customer-service section of the satisfaction report (notebook 04)."""

    sla_hours: float = Field(24.0, gt=0, description="Service level: a first response within this many hours "
                                                     "of the ticket's opening is on time")
    delay_cap_hours: float = Field(48.0, gt=0, description="Delay beyond the SLA counted up to this many hours "
                                                           "in the lapse and survey models; a ticket never "
                                                           "answered counts as this cap")
    complaint_categories: list[str] = Field(default_factory=lambda: ["complaint"],
                                            description="Ticket categories that count as complaints 投诉")
    retention_days: int = Field(180, ge=7, le=730, description="Retention after a complaint: a purchase within "
                                                               "this many days of the complaint")
    horizon_days: int = Field(365, ge=30, description="Revenue at stake: lapses within this many days of the "
                                                      "ticket")
    small_sample_n: int | None = Field(None, ge=1, description="Overrides the unit's small_sample_n here")


class UnitParams(_Strict):
    """Everything one business unit's reports need."""

    id: str = Field(pattern=UNIT_ID_PATTERN, description="Unit id: letters, digits, '_' or '-'")
    display_name: str
    data_source: str = Field(description="Folder of Parquet/CSV files, a .duckdb file or a "
                                         "postgresql:// URL or a Spark source (spark:local:<folder>, "
                                         "spark://host:port/<folder>; tables as in the contract); "
                                         "relative paths are relative to the project root")
    sources: SourceMapping = Field(SourceMapping(), description="How the files of data_source map onto "
                                                                "the data contract (see custlib/mapping.py); "
                                                                "preset: a file of params/sources/ merged "
                                                                "under these entries")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone: timestamps with a UTC offset "
                                                       "are converted to it before taking the date")
    observation_end: date
    currency: str = "CNY"
    language: Literal["en", "zh"] = Field("en", description="Language of the unit's reports: en (English) "
                                                             "or zh (Chinese)")
    small_sample_n: int = Field(30, ge=1, description="Below this n an estimate carries a warning")
    category_tiers: dict[str, PriceTier] = Field(default_factory=dict)
    segmentation: SegmentationParams = SegmentationParams()
    lifecycle: LifecycleParams = LifecycleParams()
    loyalty: LoyaltyParams = LoyaltyParams()
    satisfaction: SatisfactionParams = SatisfactionParams()
    marketing: MarketingParams = MarketingParams()
    service: ServiceParams = ServiceParams()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone name such as Asia/Shanghai or Europe/Berlin") from None
        return zone


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CustlibDataError("file not found", file=str(path), kind="params") from None
    except yaml.YAMLError as e:
        raise CustlibDataError(f"not valid YAML: {e}", file=str(path), kind="params") from None
    if not isinstance(data, dict):
        raise CustlibDataError("expected a mapping of keys to values", file=str(path), kind="params")
    return data


def unit_ids(params_dir: str | Path = "params") -> list[str]:
    """The business units that have a parameter file, sorted."""
    return sorted(p.stem for p in (Path(params_dir) / "business_units").glob("*.yaml"))


def load_params(unit_id: str, params_dir: str | Path = "params") -> UnitParams:
    """Validated parameters of one unit (defaults overlaid by the unit's file, and the source
    preset they name under both)."""
    params_dir = Path(params_dir)
    if not re.match(UNIT_ID_PATTERN, unit_id):
        raise CustlibDataError(f"unit id {unit_id!r} may contain only letters, digits, '_' and '-'",
                               column="id", kind="params")
    unit_file = params_dir / "business_units" / f"{unit_id}.yaml"
    merged = _merge(_read_yaml(params_dir / "defaults.yaml"), _read_yaml(unit_file))
    merged = _with_preset(merged, params_dir, unit_file)
    try:
        p = UnitParams.model_validate(merged)
    except ValidationError as e:
        raise _params_error(e, unit_file) from None
    if p.id != unit_id:
        raise CustlibDataError(f"id {p.id!r} does not match the file name", file=str(unit_file),
                               column="id", kind="params")
    return p


def _with_preset(merged: dict, params_dir: Path, unit_file: Path) -> dict:
    """``sources`` with its preset (``params/sources/<preset>.yaml``) merged under it: the
    unit's and the defaults' keys win."""
    sources = merged.get("sources")
    name = sources.get("preset") if isinstance(sources, dict) else None
    if not name:
        return merged
    folder = params_dir / "sources"
    path = folder / f"{name}.yaml"
    if not re.match(UNIT_ID_PATTERN, str(name)) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise CustlibDataError(f"unknown source preset {name!r} (presets in {folder}: {known})",
                               file=str(unit_file), column="sources.preset", kind="params")
    preset = _read_yaml(path)
    try:
        SourceMapping.model_validate(preset)
    except ValidationError as e:
        raise _params_error(e, path) from None
    return {**merged, "sources": _merge(preset, sources)}


def _params_error(e: ValidationError, file: Path) -> CustlibDataError:
    """The first problem pydantic found, naming the file and the dotted key."""
    err = e.errors()[0]
    key = ".".join(str(x) for x in err["loc"])
    return CustlibDataError(f"{err['msg']} (got {err.get('input')!r})", file=str(file), column=key,
                            rule=err["type"], count=len(e.errors()), kind="params")
