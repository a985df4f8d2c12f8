"""The data contract: every input table, its columns, dtypes and rules, defined once.

Validation (`custlib.sources`), loading, the demo generator (`custlib.demo`) and the docs
(`docs/data_contract.md`, rendered by :func:`contract_markdown`) all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass

# dtype names used here -> ibis type strings used for casting in the engine. A "timestamp" is a
# date with its time of day, in the unit's local time (no time zone).
IBIS_TYPES = {"string": "string", "date": "date", "timestamp": "timestamp", "int": "int64",
              "float": "float64"}


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    ``allowed``: the only permitted values; ``min``/``max``: inclusive numeric range;
    ``references``: ``"table.column"`` the value must exist in; ``not_before``: another column
    of the same table (same dtype) that this one may not precede where both are given;
    ``personal``: personal data that no report may contain.
    """

    name: str
    dtype: str
    description: str
    nullable: bool = False
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    unique: bool = False
    references: str | None = None
    not_before: str | None = None
    personal: bool = False


@dataclass(frozen=True)
class Table:
    """An input table. ``required``: every unit must have it (customers, transactions); an
    optional table may be absent from the source or empty for a unit, and the reports and
    sections that need it are then replaced by a note (see :data:`ANALYSES`)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    required: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMER_TYPES = ("individual", "enterprise")
GENDERS = ("female", "male", "other")
INCOME_BANDS = ("low", "lower_mid", "upper_mid", "high")
LOYALTY_TIERS = ("points", "vip")
LEAD_STAGES = ("lead", "qualified", "opportunity", "won", "lost")
CAMPAIGN_CHANNELS = ("email", "sms", "push", "ads", "call")
CAMPAIGN_GROUPS = ("treatment", "holdout")
TICKET_CHANNELS = ("phone", "email", "chat", "social", "store")
TICKET_CATEGORIES = ("complaint", "inquiry", "return", "delivery", "billing", "technical", "other")
SURVEY_ATTRIBUTES = (
    "product_quality",
    "value_for_money",
    "delivery",
    "service",
    "digital_experience",
)

_BU = Column("business_unit", "string", "Business unit id (matches a file in params/business_units/)")

CUSTOMERS = Table(
    "customers",
    "One row per customer, including sign-ups who never bought.",
    (
        Column("customer_id", "string", "Customer key, unique across units", unique=True),
        _BU,
        Column("signup_date", "date", "Date the customer record was created"),
        Column("customer_type", "string", "Individual or enterprise customer", allowed=CUSTOMER_TYPES),
        Column("region", "string", "Sales region"),
        Column("city", "string", "City"),
        Column("age", "int", "Age in years (individuals)", nullable=True, min=16, max=110),
        Column("gender", "string", "Gender (individuals)", nullable=True, allowed=GENDERS),
        Column("income_band", "string", "Household income band (individuals)", nullable=True, allowed=INCOME_BANDS),
        Column("interests", "string", "Psychographic interest tags, separated by ';'", nullable=True),
        Column("acquisition_channel", "string", "Channel that brought the customer"),
        Column("name", "string", "Full name", nullable=True, required=False, personal=True),
        Column("email", "string", "E-mail address", nullable=True, required=False, personal=True),
        Column("phone", "string", "Phone number", nullable=True, required=False, personal=True),
    ),
)

TRANSACTIONS = Table(
    "transactions",
    "One row per order; returns are rows with a negative amount.",
    (
        Column("order_id", "string", "Order key", unique=True),
        Column("customer_id", "string", "Buyer", references="customers.customer_id"),
        _BU,
        Column("order_date", "date", "Order date"),
        Column("amount", "float", "Net order value in the unit's currency; returns negative"),
        Column("discount", "float", "Discount granted on the order, in currency", min=0),
        Column("quantity", "int", "Items in the order", min=0),
        Column("channel", "string", "Sales channel of the order"),
        Column("product_category", "string", "Main product category (price tier per category in params)"),
    ),
)

LOYALTY_MEMBERS = Table(
    "loyalty_members",
    "One row per loyalty-programme member.",
    (
        Column("customer_id", "string", "Member", unique=True, references="customers.customer_id"),
        _BU,
        Column("enrolled_date", "date", "Date the customer joined the programme"),
        Column("tier", "string", "Programme tier", allowed=LOYALTY_TIERS),
    ),
    required=False,
)

SURVEY_RESPONSES = Table(
    "survey_responses",
    "One row per answered satisfaction survey.",
    (
        Column("response_id", "string", "Response key", unique=True),
        Column("customer_id", "string", "Respondent", references="customers.customer_id"),
        _BU,
        Column("response_date", "date", "Date of the answer"),
        Column("nps", "int", "Likelihood to recommend, 0-10", min=0, max=10),
        Column("csat", "int", "Overall satisfaction, 1-5", min=1, max=5),
        *(
            Column(a, "int", f"Rating of {a.replace('_', ' ')}, 1-5", nullable=True, min=1, max=5)
            for a in SURVEY_ATTRIBUTES
        ),
        Column("comment", "string", "Free-text comment (any language)", nullable=True),
    ),
    required=False,
)

LEADS = Table(
    "leads",
    "One row per sales lead with the furthest stage reached and the date of each stage.",
    (
        Column("lead_id", "string", "Lead key", unique=True),
        _BU,
        Column("created_date", "date", "Date the lead was created (stage 'lead')"),
        Column("source", "string", "Lead source"),
        Column("stage", "string", "Furthest stage reached, or lost", allowed=LEAD_STAGES),
        Column("qualified_date", "date", "Date qualified", nullable=True),
        Column("opportunity_date", "date", "Date it became an opportunity", nullable=True),
        Column("won_date", "date", "Date won", nullable=True),
        Column("lost_date", "date", "Date lost", nullable=True),
        Column("customer_id", "string", "Customer once won", nullable=True, references="customers.customer_id"),
        Column("amount", "float", "Deal amount once won", nullable=True, min=0),
    ),
    required=False,
)

CAMPAIGNS = Table(
    "campaigns",
    "One row per marketing campaign (e-mail, SMS, push, ads or call campaign).",
    (
        Column("campaign_id", "string", "Campaign key", unique=True),
        _BU,
        # not "name": outputs are checked for that column name as a personal field
        Column("campaign_name", "string", "Campaign name as the marketing team knows it"),
        Column("start_date", "date", "First day of the campaign (first send)"),
        Column("end_date", "date", "Last day of the campaign's offer", not_before="start_date"),
        Column("offer", "string", "What the message offered (e.g. 10% off, free shipping); empty for a "
                                  "message without an offer", nullable=True),
        Column("cost_per_contact", "float", "Cost of contacting one customer in the unit's currency: sending "
                                            "plus the offer's expected cost (discounts redeemed, gifts)", min=0),
    ),
    required=False,
)

CAMPAIGN_CONTACTS = Table(
    "campaign_contacts",
    "One row per customer a campaign selected: the contacted customers and, where the campaign "
    "kept a random holdout, the customers held out (not contacted).",
    (
        Column("campaign_id", "string", "Campaign", references="campaigns.campaign_id"),
        Column("customer_id", "string", "Customer selected", references="customers.customer_id"),
        _BU,
        Column("channel", "string", "Channel of the message", allowed=CAMPAIGN_CHANNELS),
        Column("sent_date", "date", "Date the message was sent (holdout: the date it would have been)"),
        Column("group", "string", "treatment (contacted) or holdout (randomly held out, not contacted); "
                                  "empty when the campaign kept no random holdout",
               nullable=True, allowed=CAMPAIGN_GROUPS),
        Column("opened", "int", "1 if the message was opened, 0 if not; empty where the channel does not "
                                "track opens, and for the holdout", nullable=True, min=0, max=1),
        Column("clicked", "int", "1 if a link in the message was clicked, 0 if not; empty where not "
                                 "tracked, and for the holdout", nullable=True, required=False, min=0, max=1),
    ),
    required=False,
)

SERVICE_TICKETS = Table(
    "service_tickets",
    "One row per customer-service ticket (a call, e-mail, chat, social-media message or store visit "
    "asking for help). Times are local date-times, so response times can be measured in hours.",
    (
        Column("ticket_id", "string", "Ticket key", unique=True),
        Column("customer_id", "string", "Customer who opened the ticket", references="customers.customer_id"),
        _BU,
        Column("opened_at", "timestamp", "Date and time the ticket was opened"),
        Column("first_response_at", "timestamp", "Date and time of the first answer by an agent; empty when "
                                                 "never answered", nullable=True, not_before="opened_at"),
        Column("resolved_at", "timestamp", "Date and time the ticket was resolved; empty while unresolved",
               nullable=True, not_before="opened_at"),
        Column("channel", "string", "Service channel the ticket came in by", allowed=TICKET_CHANNELS),
        Column("category", "string", "What the ticket is about", allowed=TICKET_CATEGORIES),
        Column("resolved", "int", "1 if the ticket was resolved, 0 if not", min=0, max=1),
    ),
    required=False,
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, TRANSACTIONS, LOYALTY_MEMBERS, SURVEY_RESPONSES, LEADS, CAMPAIGNS,
                        CAMPAIGN_CONTACTS, SERVICE_TICKETS)
}

PERSONAL_FIELDS: tuple[str, ...] = tuple(
    c.name for t in TABLES.values() for c in t.columns if c.personal
)


@dataclass(frozen=True)
class Analysis:
    """A report: its notebook, title, the tables it cannot run without (``needs``) and the
    sections that need an optional table (``sections``: section title -> table); such a section
    is replaced by a sentence saying which data would enable it."""

    name: str
    notebook: str
    title: str
    needs: tuple[str, ...]
    sections: dict[str, str]


ANALYSES: dict[str, Analysis] = {a.name: a for a in (
    Analysis("segmentation", "01_segmentation.ipynb", "Customer segmentation 客户细分",
             ("customers", "transactions"), {"Open leads as potential customers 潜在客户": "leads"}),
    Analysis("lifecycle", "02_lifecycle.ipynb", "Customer lifecycle 客户生命周期",
             ("customers", "transactions"),
             {"Prospect stage 潜在客户": "leads", "Sales funnel 销售漏斗": "leads"}),
    Analysis("loyalty_impact", "03_loyalty_impact.ipynb", "Loyalty programme impact 忠诚度计划",
             ("customers", "transactions", "loyalty_members"), {}),
    Analysis("satisfaction", "04_satisfaction.ipynb", "Customer satisfaction 客户满意度",
             ("customers", "transactions", "survey_responses"), {"Customer service 客户服务": "service_tickets"}),
    Analysis("marketing", "05_marketing.ipynb", "Marketing and campaigns 营销活动",
             ("customers", "transactions"),
             {"Campaign effects and targeting 营销活动效果": "campaign_contacts",
              "Campaign names, dates and costs 营销活动": "campaigns"}),
)}


def contract_markdown() -> str:
    """The data contract as Markdown (the body of docs/data_contract.md)."""
    lines = [
        "# Data contract",
        "",
        "Generated from `custlib/contract.py` by `custlib contract-doc`; a test keeps it in step.",
        "Each table is a file in the data folder (`<table>.parquet` or `<table>.csv`), a table",
        "of that name in a DuckDB database file, or any CSV / Excel / Parquet export mapped onto",
        "these columns under `sources:` in params (see the README). Columns marked personal are",
        "never shown in reports or exported target lists.",
        "",
        "Types: `string` text; `date` a calendar day (`2024-03-05`); `timestamp` a date with its time",
        "of day in the unit's local time (`2024-03-05 14:30:00`); `int` a whole number; `float` a number.",
        "",
        "`customers` and `transactions` are required. The other tables are optional: without one",
        "(absent, or no rows for the unit) the reports and sections below that need it are",
        "replaced by a note, and everything else is rendered.",
        "",
        "| report | needs | sections that need more |",
        "|---|---|---|",
        *(f"| {a.title} | {', '.join(f'`{t}`' for t in a.needs)} | "
          + ("; ".join(f"{s}: `{t}`" for s, t in a.sections.items()) or "–") + " |"
          for a in ANALYSES.values()),
        "",
    ]
    used = {t for a in ANALYSES.values() for t in (*a.needs, *a.sections.values())}
    unused = [f"`{t}`" for t in TABLES if t not in used]
    if unused:
        lines += [f"Not read by any report yet: {', '.join(unused)}.", ""]
    for t in TABLES.values():
        lines += [f"## `{t.name}` ({'required' if t.required else 'optional'})", "", t.description, "",
                  "| column | type | required | rules | description |",
                  "|---|---|---|---|---|"]
        for c in t.columns:
            rules = []
            if not c.nullable:
                rules.append("not null")
            if c.unique:
                rules.append("unique")
            if c.allowed:
                rules.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
            if c.min is not None:
                rules.append(f"≥ {c.min:g}")
            if c.max is not None:
                rules.append(f"≤ {c.max:g}")
            if c.references:
                rules.append(f"exists in `{c.references}`")
            if c.not_before:
                rules.append(f"not before `{c.not_before}`")
            if c.personal:
                rules.append("**personal**")
            lines.append(
                f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | "
                f"{'; '.join(rules)} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
