from custlib import contract
from conftest import ROOT


def test_docs_match_the_contract():
    doc = (ROOT / "docs" / "data_contract.md").read_text(encoding="utf-8")
    assert doc.strip() == contract.contract_markdown().strip(), "run `make contract-doc`"


def test_personal_fields_are_the_customer_identity_fields():
    assert set(contract.PERSONAL_FIELDS) == {"name", "email", "phone"}
    assert all(not c.required for t in contract.TABLES.values() for c in t.columns if c.personal)


def test_references_point_at_existing_columns():
    for t in contract.TABLES.values():
        for c in t.columns:
            if c.references:
                table, column = c.references.split(".")
                assert column in contract.TABLES[table].column_names


def test_column_types_and_column_orders_are_known():
    for t in contract.TABLES.values():
        for c in t.columns:
            assert c.dtype in contract.IBIS_TYPES, (t.name, c.name)
            if c.not_before:
                assert t.column(c.not_before).dtype == c.dtype, (t.name, c.name)
