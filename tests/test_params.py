import shutil

import pytest

from custlib.errors import CustlibDataError
from custlib.params import load_params, unit_ids
from conftest import ROOT


@pytest.fixture
def params_dir(tmp_path):
    d = tmp_path / "params"
    shutil.copytree(ROOT / "params", d)
    return d


def test_demo_units_load():
    assert unit_ids(ROOT / "params") == ["b2b", "online", "stores"]
    p = load_params("stores", ROOT / "params")
    assert p.id == "stores" and p.observation_end.isoformat() == "2025-12-31"
    assert set(p.category_tiers.values()) == {"basic", "standard", "premium"}


def test_unknown_key_is_a_clear_error(params_dir):
    f = params_dir / "business_units" / "online.yaml"
    f.write_text(f.read_text() + "\ncurency: EUR\n")
    with pytest.raises(CustlibDataError) as e:
        load_params("online", params_dir)
    assert e.value.kind == "params" and e.value.column == "curency" and e.value.file == str(f)


def test_bad_value_is_a_clear_error(params_dir):
    f = params_dir / "business_units" / "online.yaml"
    f.write_text(f.read_text() + "\nobservation_end: not-a-date\n")
    with pytest.raises(CustlibDataError) as e:
        load_params("online", params_dir)
    assert e.value.column == "observation_end"


@pytest.mark.parametrize("bad", ["../etc", "a/b", "x y", ""])
def test_unit_ids_cannot_escape_reports(params_dir, bad):
    with pytest.raises(CustlibDataError):
        load_params(bad, params_dir)


def test_id_must_match_file_name(params_dir):
    f = params_dir / "business_units" / "online.yaml"
    f.write_text(f.read_text().replace("id: online", "id: other"))
    with pytest.raises(CustlibDataError) as e:
        load_params("online", params_dir)
    assert e.value.column == "id"


def test_purchase_occasions_default_to_continuous_and_bg_bb_needs_discrete_ones(params_dir):
    p = load_params("stores", params_dir)
    assert p.lifecycle.purchase_occasions == "continuous" and p.lifecycle.purchase_model == "auto"
    f = params_dir / "business_units" / "stores.yaml"
    text = f.read_text()
    f.write_text(text + "\nlifecycle:\n  purchase_model: bg_bb\n")
    with pytest.raises(CustlibDataError) as e:
        load_params("stores", params_dir)
    assert e.value.column == "lifecycle" and "purchase_occasions to yearly, quarterly or monthly" in str(e.value)
    f.write_text(text + "\nlifecycle:\n  purchase_model: bg_bb\n  purchase_occasions: quarterly\n")
    p = load_params("stores", params_dir)
    assert (p.lifecycle.purchase_model, p.lifecycle.purchase_occasions) == ("bg_bb", "quarterly")
    f.write_text(text + "\nlifecycle:\n  purchase_occasions: weekly\n")
    with pytest.raises(CustlibDataError) as e:
        load_params("stores", params_dir)
    assert e.value.column == "lifecycle.purchase_occasions"


def test_service_parameters_default_and_validate(params_dir):
    p = load_params("online", params_dir)
    assert (p.service.sla_hours, p.service.delay_cap_hours) == (24, 48)
    assert p.service.complaint_categories == ["complaint"] and p.service.small_sample_n is None
    f = params_dir / "business_units" / "online.yaml"
    f.write_text(f.read_text() + "\nservice:\n  sla_hours: 0\n")
    with pytest.raises(CustlibDataError) as e:
        load_params("online", params_dir)
    assert e.value.column == "service.sla_hours"
