"""Shared fixtures: demo data generated once per test session (20,000 customers per unit) and
the vendored CDNOW summary (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from custlib import demo, sources

ROOT = Path(__file__).resolve().parents[1]
DEMO_SEED = 42
DEMO_CUSTOMERS = 20_000
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def cdnow() -> pd.DataFrame:
    """The CDNOW sample's per-customer summary in weeks (tests/data/README.md)."""
    return pd.read_csv(DATA / "cdnow_summary.csv", index_col="customer_id")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A freshly generated demo data folder (same size and seed as `make reports`)."""
    out = tmp_path_factory.mktemp("demo")
    demo.generate(out, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    return out


@pytest.fixture(scope="session")
def truth(demo_dir) -> dict:
    """Planted parameters per unit (truth/parameters.json)."""
    return json.loads((demo_dir / "truth" / "parameters.json").read_text())


@pytest.fixture(scope="session")
def customer_truth(demo_dir) -> pd.DataFrame:
    """Planted per-customer latent values (truth/customer_truth.parquet)."""
    return pd.read_parquet(demo_dir / "truth" / "customer_truth.parquet")


@pytest.fixture(scope="session")
def demo_unit(demo_dir):
    """Factory: UnitData of a demo unit ('online', 'stores' or 'b2b') on the generated data."""
    return once_per_unit(lambda unit_id: sources.load_unit(unit_id, ROOT, run_date="2026-01-15", data_source=demo_dir))


def once_per_unit(compute):
    """A function of a unit id that calls ``compute(unit_id)`` the first time only (the body of
    the per-unit factory fixtures)."""
    cache = {}

    def get(unit_id: str):
        if unit_id not in cache:
            cache[unit_id] = compute(unit_id)
        return cache[unit_id]

    return get


# Modules that render the real notebooks or copy the demo into PostgreSQL: minutes each.
SLOWEST_MODULES = ("test_thin_data.py", "test_reports_e2e.py", "test_engines.py")


def pytest_collection_modifyitems(items):
    """The slowest modules first. `make test` hands whole modules to the workers in this order
    (pytest-xdist ``--dist loadscope --no-loadscope-reorder``), so they start at once instead of
    being left to the end."""
    items.sort(key=lambda item: item.path.name not in SLOWEST_MODULES)
