"""Run parameters: ``params/defaults.yaml`` overlaid by ``params/business_units/<id>.yaml``.

Validated with pydantic; an unknown key or a bad value raises :class:`CustlibDataError`
(``kind="params"``) naming the file and the key.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from custlib.errors import CustlibDataError

UNIT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
PriceTier = Literal["basic", "standard", "premium"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentationParams(_Strict):
    """Parameters of the segmentation analysis (notebook 01)."""


class LifecycleParams(_Strict):
    """Parameters of the lifecycle analysis (notebook 02)."""


class LoyaltyParams(_Strict):
    """Parameters of the loyalty-impact analysis (notebook 03)."""


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
    lapse_days: int = Field(180, ge=7, description="Lapsed: no purchase for more than this many days")
    horizon_days: int = Field(365, ge=30, description="Revenue at stake: lapses within this many days "
                                                      "of the survey")
    top_terms: int = Field(10, ge=1, description="Distinctive comment terms shown per group and language")

    @model_validator(mode="after")
    def _groups_do_not_overlap(self) -> "SatisfactionParams":
        if self.detractor_max >= self.promoter_min:
            raise ValueError("detractor_max must be below promoter_min")
        return self


class UnitParams(_Strict):
    """Everything one business unit's reports need."""

    id: str = Field(pattern=UNIT_ID_PATTERN, description="Unit id: letters, digits, '_' or '-'")
    display_name: str
    data_source: str = Field(description="Folder of Parquet/CSV files or a .duckdb file; "
                                         "relative paths are relative to the project root")
    observation_end: date
    currency: str = "CNY"
    small_sample_n: int = Field(30, ge=1, description="Below this n an estimate carries a warning")
    category_tiers: dict[str, PriceTier] = Field(default_factory=dict)
    segmentation: SegmentationParams = SegmentationParams()
    lifecycle: LifecycleParams = LifecycleParams()
    loyalty: LoyaltyParams = LoyaltyParams()
    satisfaction: SatisfactionParams = SatisfactionParams()


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
    """Validated parameters of one unit (defaults overlaid by the unit's file)."""
    import re

    params_dir = Path(params_dir)
    if not re.match(UNIT_ID_PATTERN, unit_id):
        raise CustlibDataError(f"unit id {unit_id!r} may contain only letters, digits, '_' and '-'",
                               column="id", kind="params")
    unit_file = params_dir / "business_units" / f"{unit_id}.yaml"
    merged = _merge(_read_yaml(params_dir / "defaults.yaml"), _read_yaml(unit_file))
    try:
        p = UnitParams.model_validate(merged)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise CustlibDataError(f"{err['msg']} (got {err.get('input')!r})", file=str(unit_file),
                               column=key, rule=err["type"], count=len(e.errors()),
                               kind="params") from None
    if p.id != unit_id:
        raise CustlibDataError(f"id {p.id!r} does not match the file name", file=str(unit_file),
                               column="id", kind="params")
    return p
