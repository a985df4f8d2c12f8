"""Small and degenerate business units for end-to-end runs of the real notebooks.

:func:`make_project` writes a project root (the real notebooks and params, plus one unit per
variant) whose units are drawn from the demo generator at a few customers and then thinned
(``SHAPES``): optional tables absent or empty, one class of every categorical variable, no
repeat buyers, every customer a member, no promoters, or the last three together.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import yaml

from custlib import contract, demo

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = [name for name, t in contract.TABLES.items() if not t.required]


def _no_repeat_buyers(tables: dict[str, pd.DataFrame]) -> None:
    tx = tables["transactions"].sort_values(["customer_id", "order_date"])
    tables["transactions"] = tx[tx["amount"] > 0].drop_duplicates("customer_id")


def _one_class(tables: dict[str, pd.DataFrame]) -> None:
    c = tables["customers"]
    for col in ("customer_type", "region", "city", "acquisition_channel", "gender", "income_band"):
        c[col] = c[col].dropna().iloc[0] if c[col].notna().any() else None
    c["customer_type"] = "individual"
    tx = tables["transactions"]
    tx["channel"] = tx["channel"].iloc[0]


def _degenerate(tables: dict[str, pd.DataFrame]) -> None:
    """One class of every categorical variable, every customer a member, no promoters."""
    _one_class(tables)
    _all_members_no_promoters(tables)


def _all_members_no_promoters(tables: dict[str, pd.DataFrame]) -> None:
    c = tables["customers"]
    first = tables["transactions"].groupby("customer_id")["order_date"].min()
    enrolled = first.reindex(c["customer_id"]).fillna(pd.Timestamp("2024-06-01")).to_numpy()
    tables["loyalty_members"] = pd.DataFrame({"customer_id": c["customer_id"], "business_unit": c["business_unit"],
                                              "enrolled_date": enrolled, "tier": "points"})
    s = tables["survey_responses"]
    s["nps"] = s["nps"].clip(upper=8)


def _optional_absent(tables: dict[str, pd.DataFrame]) -> None:
    for name in OPTIONAL:
        tables[name] = None


def _optional_empty(tables: dict[str, pd.DataFrame]) -> None:
    for name in OPTIONAL:
        tables[name] = tables[name].iloc[:0]


SHAPES = {
    "full": lambda tables: None,
    "absent": _optional_absent,
    "empty": _optional_empty,
    "one_time_buyers": _no_repeat_buyers,
    "one_class": _one_class,
    "all_members_no_promoters": _all_members_no_promoters,
    "degenerate": _degenerate,
}


def make_unit(root: Path, unit: str, customers: int, shape: str = "full", seed: int = 7) -> Path:
    """Write ``data/<unit>/`` and ``params/business_units/<unit>.yaml``; returns the data folder.
    ``customers`` = 0 writes every table without rows."""
    folder = root / "data" / unit
    demo.generate(folder, customers=max(customers, 5), seed=seed, units=("online",))
    shutil.rmtree(folder / "truth")
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in contract.TABLES}
    for name, df in tables.items():
        df["business_unit"] = unit
        if customers == 0:
            tables[name] = df.iloc[:0]
    SHAPES[shape](tables)
    for name, df in tables.items():
        path = folder / f"{name}.parquet"
        path.unlink()
        if df is not None:
            df.to_parquet(path, index=False)
    online = yaml.safe_load((ROOT / "params" / "business_units" / "online.yaml").read_text())
    spec = {"id": unit, "display_name": f"Thin unit {unit}", "data_source": f"data/{unit}",
            "category_tiers": online["category_tiers"]}
    (root / "params" / "business_units" / f"{unit}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return folder


def make_project(root: Path, units: dict[str, tuple[int, str]]) -> Path:
    """A project root with the real notebooks and params and only the given units
    (``{unit: (customers, shape)}``)."""
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "params", root / "params")
    for f in (root / "params" / "business_units").glob("*.yaml"):
        f.unlink()
    for unit, (customers, shape) in units.items():
        make_unit(root, unit, customers, shape)
    return root
