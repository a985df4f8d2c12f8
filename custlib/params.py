"""Run parameters: ``params/defaults.yaml`` overlaid by ``params/business_units/<id>.yaml``.

Validated with pydantic; an unknown key or a bad value raises :class:`CustlibDataError`
(``kind="params"``) naming the file and the key.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
