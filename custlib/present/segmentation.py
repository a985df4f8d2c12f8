"""What the segmentation report shows, built from a :class:`custlib.segmentation.SegmentationResult`
and the unit's params: the executive findings, one section per part (heading, intro from params,
display table), the method-and-diagnostics block, the output files and the portfolio KPIs.

Group names come from params (``chinese`` in zh, ``name`` in en); every other word from the
catalogue (``custlib/locales/<language>/segmentation.yaml``); numbers from :mod:`custlib.present.fmt`.
"""

from __future__ import annotations

import ast
import operator
from pathlib import Path

import pandas as pd

from custlib import report
from custlib import segmentation as sg
from custlib.plots import segmentation as plots
from custlib.present import fmt
from custlib.present.i18n import has, language, name, t
from custlib.report import Finding
from custlib.stats import Unavailable

FLOWS_SHOWN = 12
UNSTABLE_ARI = 0.6  # mean adjusted Rand index below which the clusters are called unstable
ACTIONS_PER_FINDING = 2
COMPARISONS = {ast.GtE: "≥", ast.LtE: "≤", ast.Gt: ">", ast.Lt: "<", ast.Eq: "=", ast.NotEq: "≠"}
ARITHMETIC = {ast.Div: operator.truediv, ast.Mult: operator.mul, ast.Add: operator.add, ast.Sub: operator.sub}


# -- names --------------------------------------------------------------------------------------

def _label(group) -> str:
    """A params group (segment, tier, class, action, classification) in the report language."""
    english = getattr(group, "name", None) or getattr(group, "title", "")
    return group.chinese if language() == "zh" and group.chinese else english


def _cluster_names(clusters: sg.BehaviourClustering) -> dict[int, str]:
    """Cluster number -> name from its descriptor words (``names.cluster_word.*``); the number
    is added when two names read the same."""
    sep = t("segmentation.clusters.word_sep")
    names = {c: t("segmentation.clusters.name", words=sep.join(name("cluster_word", w) for w in words))
             if words else t("segmentation.clusters.average") for c, words in clusters.descriptors_.items()}
    twice = pd.Series(names).duplicated(keep=False)
    return names | {c: f"{names[c]} ({c})" for c in twice[twice].index}


def labels(seg: sg.SegmentationResult, field: str) -> dict:
    """Display names of the values of ``field``: "rfm_segment" (with the not-yet-buyers row of
    the migration), "value_tier", a class key of params, "cluster" (number) or "cluster_name",
    "action" (playbook action key), "field" (the segment fields themselves) or "feature"
    (clustering features). Other fields: no names (values are shown as they are)."""
    sp = seg.params
    clusters = _cluster_names(seg.clusters) if isinstance(seg.clusters, sg.BehaviourClustering) else {}
    if field == "rfm_segment":
        return {r.name: _label(r) for r in sp.rfm_segments} | {sg.NOT_YET: t("segmentation.not_yet")}
    if field == "value_tier":
        return {g.name: _label(g) for g in sp.value_tiers}
    if field in sp.classes:
        dim = sp.classes[field]
        return {r.name: _label(r) for r in dim.rules} | {dim.otherwise.name: _label(dim.otherwise)}
    if field == "cluster":
        return clusters
    if field == "cluster_name":
        return {seg.clusters.names_[c]: text for c, text in clusters.items()}
    if field == "action":
        return {k: _label(a) for k, a in sp.actions.items()}
    if field == "field":
        return {f: t(f"segmentation.fields.{f}") for f in ("rfm_segment", "value_tier", "cluster", "cluster_name")} | {
            k: _label(d) for k, d in sp.classes.items()}
    if field == "feature":
        return {f: name("feature", f) for f in sg.BehaviourClustering(sp.clustering).features}
    return {}


def _variable_label(variable: str) -> str:
    """A profile variable; a tag of a multi-label column reads 'Interests: travel'."""
    column, _, tag = variable.partition(": ")
    return f"{name('profile_variable', column)}: {name(f'profile_value.{column}', tag)}" if tag else name(
        "profile_variable", variable)


def _category_label(variable: str, category) -> str:
    column, _, tag = variable.partition(": ")
    return name(f"profile_value.{column}", tag) if tag else name(f"profile_value.{variable}", category)


def _actions_text(keys, seg: sg.SegmentationResult, limit: int | None = None) -> str:
    names = labels(seg, "action")
    keys = list(dict.fromkeys(keys))[:limit]
    return t("segmentation.list_sep").join(names[k] for k in keys)


def _playbook_actions(seg: sg.SegmentationResult, field: str, groups) -> list[str]:
    """The action keys params give the groups of one segment field, in playbook order."""
    plan = seg.params.playbook.get(field, {})
    return list(dict.fromkeys(a for g in groups for a in plan.get(g, [])))


def _pct(x: float) -> str:
    return fmt.value(x, "pct")


def _param_pct(x: float) -> str:
    """A share set in params as written: 80%, 12.5%."""
    return fmt.value(x, "pct", digits=0 if float(round(100 * x, 6)).is_integer() else 1)


# -- narrative from params ------------------------------------------------------------------------

def _score_range(bounds: tuple[int, int]) -> str:
    lo, hi = bounds
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def rfm_rule_text(rule) -> str:
    """'recency 5, frequency 4–5' (and monetary when the rule restricts it)."""
    text = t("segmentation.rfm.rule", r=_score_range(rule.r), f=_score_range(rule.f))
    if tuple(rule.m) != (1, sg.N_SCORES):
        text += t("segmentation.list_sep") + t("segmentation.rfm.rule_m", m=_score_range(rule.m))
    return text


def value_tier_definitions(params) -> list[str]:
    """What each value tier is, from ``value_tier_cuts``: 'the first 80% of net revenue', 'the
    next 15%', 'the remaining 5%'."""
    high, mid = params.segmentation.value_tier_cuts
    return [t("segmentation.value.first", share=_param_pct(high)),
            t("segmentation.value.next", share=_param_pct(mid - high)), t("segmentation.value.rest", share=_param_pct(1 - mid))]


def value_tiers_intro(params) -> str:
    """The value-tier section's intro, stating the cut points of params."""
    tiers = [_label(g) for g in params.segmentation.value_tiers]
    first, following, rest = value_tier_definitions(params)
    return t("segmentation.value.intro", high=tiers[0], mid=tiers[1], low=tiers[2], first=first,
             next=following, rest=rest)


def _constant(node):
    """A number or string literal, or arithmetic of number literals such as ``1 / 3``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        a, b = _constant(node.left), _constant(node.right)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return ARITHMETIC[type(node.op)](a, b)
    return None


def _rule_value(seg: sg.SegmentationResult, variable: str, x) -> str:
    if isinstance(x, str):
        return labels(seg, variable).get(x) or name(f"profile_value.{variable}", x)
    if variable.endswith(("_share", "_rate")):
        return _param_pct(x)
    digits = 0 if float(x).is_integer() else 2
    return fmt.value(x, "days", digits=digits) if variable.endswith("_days") else fmt.value(x, "number", digits=digits)


def _rule_node(seg: sg.SegmentationResult, node) -> str | None:
    if isinstance(node, ast.BoolOp):
        parts = [_rule_node(seg, v) for v in node.values]
        joiner = t("segmentation.rule.and" if isinstance(node.op, ast.And) else "segmentation.rule.or")
        return None if None in parts else joiner.join(parts)
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)
            and type(node.ops[0]) in COMPARISONS and has(f"names.rule_variable.{node.left.id}")):
        return None
    x = _constant(node.comparators[0])
    if x is None:
        return None
    variable = node.left.id
    return f"{name('rule_variable', variable)} {COMPARISONS[type(node.ops[0])]} {_rule_value(seg, variable, x)}"


def class_rule_text(seg: sg.SegmentationResult, rule: str) -> str | None:
    """A class rule of params in words ('orders per month ≥ 3'); None when the rule uses more
    than comparisons of known variables with constants (it is then shown in the diagnostics)."""
    try:
        return _rule_node(seg, ast.parse(rule, mode="eval").body)
    except SyntaxError:
        return None


# -- executive findings ---------------------------------------------------------------------------

def _customers_finding(seg: sg.SegmentationResult) -> tuple[str, list[str]]:
    end = f"{seg.observation_end:%Y-%m-%d}"
    prospects = seg.registered_without_purchase + seg.open_leads
    buyers = fmt.value(seg.buyers, "count")
    if not prospects:
        return t("segmentation.findings.buyers_only", buyers=buyers, end=end), []
    key = "no_leads" if seg.prospects == sg.NO_LEADS else "prospects"
    g = seg.playbook.groups
    only_prospects = g[(g["customers"] > 0) & (g["buyers"] == 0)] if len(g) else g
    actions = [a for acts in only_prospects.get("actions", []) for a in acts]
    return t(f"segmentation.findings.{key}", buyers=buyers, end=end,
             prospects=fmt.value(prospects, "count")), actions


def _concentration_finding(seg: sg.SegmentationResult, params) -> tuple[str, list[str]] | None:
    if seg.buyers < seg.small_n:
        return None
    text = t("segmentation.findings.concentration", top=_pct(sg.TOP_SHARE),
             share=fmt.estimate(seg.value.top20, "pct", n=False))
    high = params.segmentation.value_tiers[0]
    return text, _playbook_actions(seg, "value_tier", [high.name]), t(
        "segmentation.findings.for_tier", tier=_label(high), first=value_tier_definitions(params)[0])



def _top_segment_finding(seg: sg.SegmentationResult) -> tuple[str, list[str]] | None:
    top = seg.params.rfm_segments[0].name if seg.params.rfm_segments else None  # the best segment
    row = seg.rfm.summary[seg.rfm.summary["segment"] == top]
    if row.empty or row["customers"].iloc[0] < seg.small_n:
        return None
    text = t("segmentation.findings.top_segment", segment=labels(seg, "rfm_segment")[top],
             share=fmt.estimate(row["revenue_share"].iloc[0], "pct", n=False))
    return text, _playbook_actions(seg, "rfm_segment", [top])


def _lapsing_finding(seg: sg.SegmentationResult) -> tuple[str, list[str]] | None:
    group = seg.lapsing
    if group.customers < seg.small_n:
        return None
    names = labels(seg, "rfm_segment")
    text = t("segmentation.findings.lapsing", segments=t("segmentation.name_sep").join(names[s] for s in group.segments),
             share=fmt.estimate(group.revenue_share, "pct", n=False))
    return text, _playbook_actions(seg, "rfm_segment", group.segments)


def _migration_finding(seg: sg.SegmentationResult) -> tuple[str, list[str]] | None:
    """The largest move out of the first (best) RFM segment since the earlier date."""
    m = seg.migration
    if not isinstance(m, sg.Migration) or not seg.params.rfm_segments:
        return None
    top = seg.params.rfm_segments[0].name
    moves = m.moves()
    moves = moves[(moves["from"] == top) & (moves["customers"] > 0)]
    if moves.empty or moves["share"].iloc[0].n < seg.small_n:
        return None
    move = moves.iloc[0]
    names = labels(seg, "rfm_segment")
    text = t("segmentation.findings.migration", earlier=f"{m.earlier:%Y-%m-%d}", segment=names[top],
             to=names[move["to"]], share=fmt.estimate(move["share"], "pct", n=False))
    return text, _playbook_actions(seg, "rfm_segment", [move["to"]])


def _findings(seg: sg.SegmentationResult, params) -> list[tuple[str, list[str], str]]:
    """(sentence, action keys, who the actions are for or "") of each finding, in reading order;
    an action already given by an earlier finding is not repeated."""
    found = [f for f in (_customers_finding(seg), _concentration_finding(seg, params), _top_segment_finding(seg),
                         _lapsing_finding(seg), _migration_finding(seg)) if f]
    out, given = [], set()
    for text, actions, *lead in found:
        actions = [a for a in dict.fromkeys(actions) if a not in given][:ACTIONS_PER_FINDING]
        out.append((text, actions, lead[0] if lead else ""))
        given |= set(actions)
    return out


def findings(seg: sg.SegmentationResult, params) -> list[Finding]:
    """At most five findings: buyers and prospects, revenue concentration (top-20% share), the
    first RFM segment's revenue share, the once-frequent buyers who stopped ordering, and the
    largest move out of the first segment; each with the playbook's actions for that group."""
    return [Finding(text, lead + _actions_text(actions, seg) if actions else "")
            for text, actions, lead in _findings(seg, params)]


def warning_texts(seg: sg.SegmentationResult, params) -> list[str]:
    """The cautions that apply to the whole report: too few buyers for confident numbers."""
    if seg.buyers < seg.small_n:
        return [t("segmentation.warnings.few_buyers", n=fmt.value(seg.buyers, "count"), small=seg.small_n)]
    return []


def warnings(seg: sg.SegmentationResult, params) -> None:
    """:func:`warning_texts` as visible cautions."""
    for text in warning_texts(seg, params):
        report.warning(text)


def kpis(seg: sg.SegmentationResult, params) -> dict:
    """Gini coefficient and top-20% revenue share (bootstrap intervals; left out below the small
    sample size) and up to three actions from the findings, for the portfolio page."""
    out = {}
    if seg.buyers >= seg.small_n:
        out["gini"] = {**seg.value.gini.to_dict(), "kind": "ratio"}
        out["top20_share"] = {**seg.value.top20.to_dict(), "kind": "pct"}
    out["actions"] = [f.action for f in findings(seg, params) if f.action][:3]
    return out


# -- display tables ---------------------------------------------------------------------------------

def _col(key: str, **values) -> str:
    return t(f"segmentation.columns.{key}", **values)


def _cells(estimates, kind: str, seg: sg.SegmentationResult, currency: str = "") -> list[str]:
    """Table cells 'estimate (interval)'; money in whole units; too few below the small n."""
    digits = 0 if kind == "money" else None
    return [fmt.cell(e, kind, currency=currency, small_n=seg.small_n, digits=digits) for e in estimates]


def rfm_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    s = seg.rfm.summary
    rules = {r.name: r for r in seg.params.rfm_segments}
    return pd.DataFrame({
        _col("segment"): s["segment"].map(labels(seg, "rfm_segment")),
        _col("rfm_rule"): [rfm_rule_text(rules[g]) for g in s["segment"]],
        _col("buyers"): s["customers"],
        _col("share_of_buyers"): _cells(s["share"], "pct", seg),
        _col("share_of_revenue"): _cells(s["revenue_share"], "pct", seg),
        _col("mean_recency"): [fmt.value(x, "days") for x in s["mean_recency"]],
        _col("mean_orders"): [fmt.value(x, "number", digits=1) for x in s["mean_frequency"]],
        _col("mean_revenue"): _cells(s["mean_monetary"], "money", seg, params.currency),
    })


def value_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    s = seg.value.summary
    return pd.DataFrame({
        _col("tier"): s["tier"].map(labels(seg, "value_tier")),
        _col("definition"): value_tier_definitions(params)[: len(s)],
        _col("buyers"): s["customers"],
        _col("share_of_buyers"): _cells(s["share"], "pct", seg),
        _col("share_of_revenue"): _cells(s["revenue_share"], "pct", seg),
        _col("mean_revenue"): _cells(s["mean_revenue"], "money", seg, params.currency),
    })


def prospects_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    s = seg.prospects.summary
    return pd.DataFrame({
        _col("channel"): [name("profile_value.acquisition_channel", c) for c in s["channel"]],
        _col("registered"): s["registered"], _col("open_leads"): s["open_leads"],
        _col("prospects"): s["prospects"], _col("share_of_prospects"): _cells(s["share"], "pct", seg),
    })


def classes_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    s = seg.classes.summary
    dims = seg.params.classes
    rule_of = {(k, r.name): r.rule for k, d in dims.items() for r in d.rules}

    def rule(dimension, cls):
        if (dimension, cls) not in rule_of:
            return t("segmentation.classes.otherwise")
        return class_rule_text(seg, rule_of[dimension, cls]) or t("segmentation.classes.rule_in_diagnostics")

    return pd.DataFrame({
        _col("classification"): [_label(dims[d]) for d in s["dimension"]],
        _col("class"): [labels(seg, d).get(c, c) for d, c in zip(s["dimension"], s["class"])],
        _col("rule"): [rule(d, c) for d, c in zip(s["dimension"], s["class"])],
        _col("customers"): s["customers"], _col("of_which_leads"): s["leads"],
        _col("share_of_customers"): _cells(s["share"], "pct", seg),
        _col("share_of_revenue"): _cells(s["revenue_share"], "pct", seg),
        _col("mean_orders"): [fmt.value(x, "number", digits=1) for x in s["mean_orders"]],
        _col("mean_revenue"): _cells(s["mean_revenue"], "money", seg, params.currency),
    })


def clusters_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    """Size and mean features per buyer of each cluster, in original units."""
    c = seg.clusters.centroids_
    out = pd.DataFrame({_col("cluster"): c["cluster"].map(labels(seg, "cluster")), _col("buyers"): c["customers"],
                        _col("share"): [_pct(x) for x in c["share"]]})
    features = labels(seg, "feature")
    for f in seg.clusters.features_:
        kind, digits = ("pct", None) if f.endswith(("_share", "_rate")) else ("days", None) if f.endswith("_days") \
            else ("number", 1) if f == "orders" else ("money", 0)
        out[features[f]] = [fmt.value(x, kind, currency=params.currency, digits=digits) for x in c[f]]
    return out


def skews_table(seg: sg.SegmentationResult, grouping: str, top: int) -> pd.DataFrame:
    """The strongest significant skews of one grouping's profile."""
    f = seg.profiles[grouping].flagged(top)
    return pd.DataFrame({
        _col("group"): [labels(seg, grouping).get(g, g) for g in f["group"]],
        _col("characteristic"): [name("profile_variable", v.partition(": ")[0]) for v in f["variable"]],
        _col("category"): [_category_label(v, c) for v, c in zip(f["variable"], f["category"])],
        _col("share_in_group"): _cells([{"estimate": x, "ci_low": lo, "ci_high": hi, "n": n} for x, lo, hi, n in
                                        zip(f["share"], f["ci_low"], f["ci_high"], f["n_group"])], "pct", seg),
        _col("share_overall"): [_pct(x) for x in f["share_overall"]],
        _col("index"): [fmt.value(x, "count") for x in f["index"]],
        _col("n_group"): f["n_group"],
    }) if len(f) else pd.DataFrame()


def playbook_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    g = seg.playbook.groups
    fields = labels(seg, "field")
    return pd.DataFrame({
        _col("segment_field"): g["field"].map(fields),
        _col("group"): [labels(seg, f).get(x, x) for f, x in zip(g["field"], g["group"])],
        _col("customers"): g["customers"],
        _col("share_of_revenue"): _cells(g["revenue_share"], "pct", seg),
        _col("actions"): [_actions_text(a, seg) for a in g["actions"]],
    })


def actions_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    a = seg.playbook.actions
    return pd.DataFrame({
        _col("action"): a["action"].map(labels(seg, "action")), _col("target_list"): a["file"],
        _col("customers"): a["customers"], _col("share_of_revenue_held"): _cells(a["revenue_share"], "pct", seg),
    })


def moves_table(seg: sg.SegmentationResult, params) -> pd.DataFrame:
    f = seg.migration.moves().head(FLOWS_SHOWN)
    names = labels(seg, "rfm_segment")
    return pd.DataFrame({
        _col("from_segment"): f["from"].map(names), _col("to_segment"): f["to"].map(names),
        _col("customers"): f["customers"],
        _col("earlier_segment_size"): [e.n for e in f["share"]],
        _col("share_of_earlier"): _cells(f["share"], "pct", seg),
    })


# -- sections ------------------------------------------------------------------------------------

def rfm_segments(seg: sg.SegmentationResult, params) -> None:
    """Section: what the RFM scores and segments are, and their size and value."""
    report.section(t("segmentation.rfm.title"), t("segmentation.rfm.intro", top=sg.N_SCORES))
    report.table(rfm_table(seg, params), t("segmentation.rfm.caption"), n=seg.rfm.n)


def value_tiers(seg: sg.SegmentationResult, params) -> None:
    """Section: the value tiers (cut points from params) and how concentrated revenue is."""
    report.section(t("segmentation.value.title"), value_tiers_intro(params))
    report.table(value_table(seg, params), t("segmentation.value.caption"), n=seg.rfm.n)
    if seg.buyers >= seg.small_n:
        report.note(t("segmentation.value.concentration", top=_pct(sg.TOP_SHARE),
                      share=fmt.estimate(seg.value.top20, "pct"), gini=fmt.estimate(seg.value.gini, "ratio")))


def profiles(seg: sg.SegmentationResult, params, groupings=("rfm_segment", "value_tier"), top: int = 15,
             intro: bool = False) -> None:
    """The strongest significant profile skews of each grouping (those params define), each
    under its own heading; ``intro`` opens the profiles section first."""
    if intro:
        report.section(t("segmentation.profiles.title"),
                       t("segmentation.profiles.intro", alpha=_param_pct(seg.params.profile_alpha)))
    fields = labels(seg, "field")
    for grouping in (g for g in groupings if g in seg.profiles):
        report.section(t("segmentation.profiles.of", grouping=fields[grouping]), level=3)
        p = seg.profiles[grouping]
        if not report.available(p):
            continue
        if p.flagged().empty:
            report.note(t("segmentation.profiles.none", alpha=_param_pct(p.alpha), n=fmt.value(p.n, "count")))
        else:
            report.table(skews_table(seg, grouping, top), t("segmentation.profiles.caption", grouping=fields[grouping]),
                         n=p.n)


def profile_chart(seg: sg.SegmentationResult, grouping: str, variable: str):
    """Index chart of one profile variable across the groups, or the reason it cannot be drawn."""
    p = seg.profiles.get(grouping)
    if p is None or not report.available(p):
        return None
    cells = p.variable_cells(variable)
    if not report.available(cells):
        return None
    categories = {c: _category_label(variable, c) for c in cells["category"].unique()}
    title = t("segmentation.charts.profile_title", variable=_variable_label(variable),
              grouping=labels(seg, "field")[grouping])
    return plots.profile_index(cells, variable=variable, groups=labels(seg, grouping), categories=categories,
                               title=title)


def prospects(seg: sg.SegmentationResult, params) -> bool:
    """Section: registered customers without a purchase and open leads by channel."""
    report.section(t("segmentation.prospects.title"), t("segmentation.prospects.intro"))
    if not report.available(seg.prospects):
        return False
    report.table(prospects_table(seg, params), t("segmentation.prospects.caption"), n=seg.prospects.n)
    return True


def classes(seg: sg.SegmentationResult, params) -> None:
    """Section: the client's classifications with their rules in words, size and value."""
    report.section(t("segmentation.classes.title"),
                   t("segmentation.classes.intro", months=seg.params.frequency_window_months))
    if len(seg.classes.summary):
        report.table(classes_table(seg, params), t("segmentation.classes.caption"), n=len(seg.customers))


def clusters(seg: sg.SegmentationResult, params) -> bool:
    """Section: the behavioural clusters in original units, or why there are none; True when
    there are clusters to chart."""
    cp = seg.params.clustering
    features = labels(seg, "feature")
    used = seg.clusters.features_ if isinstance(seg.clusters, sg.BehaviourClustering) else \
        sg.BehaviourClustering(cp).features
    report.section(t("segmentation.clusters.title"), t(
        "segmentation.clusters.intro", features=t("segmentation.name_sep").join(features[f].lower() if language() == "en" else features[f]
                                                 for f in used),
        k_min=cp.k_min, k_max=cp.k_max))
    if not report.available(seg.clusters):
        return False
    report.table(clusters_table(seg, params), t("segmentation.clusters.caption", k=seg.clusters.k_), n=seg.buyers)
    if seg.clusters.stability_.estimate < UNSTABLE_ARI:
        report.warning(t("segmentation.warnings.unstable_clusters",
                         ari=fmt.estimate(seg.clusters.stability_, "ratio", n=False)))
    return True


def playbook(seg: sg.SegmentationResult, params) -> None:
    """Section: the actions params give each group, and the target list of each action."""
    report.section(t("segmentation.playbook.title"), t("segmentation.playbook.intro"))
    report.table(playbook_table(seg, params), t("segmentation.playbook.caption"), n=len(seg.customers))
    report.table(actions_table(seg, params), t("segmentation.playbook.actions_caption"), n=len(seg.customers))


def migration(seg: sg.SegmentationResult, params) -> bool:
    """Section: segments at the earlier date (from params) against now, the largest moves; True
    when there is a migration to chart."""
    sp = seg.params
    when = (t("segmentation.migration.from_params") if sp.migration_from else
            t("segmentation.migration.months_before", months=sp.migration_months))
    m = seg.migration
    report.section(t("segmentation.migration.title"), t(
        "segmentation.migration.intro", earlier=f"{sg.migration_date(params):%Y-%m-%d}", when=when,
        later=f"{seg.observation_end:%Y-%m-%d}"))
    if not report.available(m):
        return False
    if len(m.moves()):
        report.table(moves_table(seg, params), t("segmentation.migration.caption", shown=FLOWS_SHOWN), n=seg.buyers)
    return True


# -- method and diagnostics -------------------------------------------------------------------------

def _tests_table(p) -> pd.DataFrame:
    tt = p.tests
    tested = tt["dof"] > 0
    related = [t("segmentation.diagnostics.yes") if s else t("segmentation.diagnostics.no") if d
               else t("segmentation.diagnostics.not_tested") for s, d in zip(tt["significant"], tested)]
    return pd.DataFrame({
        _col("characteristic"): [_variable_label(v) for v in tt["variable"]],
        _col("chi_square"): [fmt.value(x, "number", digits=1) if d else "–" for x, d in zip(tt["chi2"], tested)],
        _col("df"): tt["dof"],
        _col("p_holm"): [fmt.pvalue(x) if d else "–" for x, d in zip(tt["p_holm"], tested)],
        _col("cramers_v"): [fmt.value(x, "ratio") if d else "–" for x, d in zip(tt["cramers_v"], tested)],
        _col("n"): tt["n"], _col("related"): related,
    })


def _residuals_table(seg: sg.SegmentationResult, grouping: str, top: int = 15) -> pd.DataFrame:
    f = seg.profiles[grouping].flagged(top)
    return pd.DataFrame({
        _col("group"): [labels(seg, grouping).get(g, g) for g in f["group"]],
        _col("characteristic"): [name("profile_variable", v.partition(": ")[0]) for v in f["variable"]],
        _col("category"): [_category_label(v, c) for v, c in zip(f["variable"], f["category"])],
        _col("adj_residual"): [fmt.value(x, "number", digits=1, signed=True) for x in f["adj_residual"]],
    })


def diagnostics(seg: sg.SegmentationResult, params) -> None:
    """The one collapsed "Method and diagnostics" block: intervals used, mean RFM scores, the
    class rules that could not be put into words (as written in params), the profile tests and residuals, and the choice and
    stability of the clusters."""
    s = seg.rfm.summary
    parts = [report.note_html(t("segmentation.diagnostics.methods", reps=sg.CONCENTRATION_REPS)),
             report.table_html(pd.DataFrame({
                 _col("segment"): s["segment"].map(labels(seg, "rfm_segment")),
                 _col("mean_scores"): [f"{r:.1f} / {f:.1f} / {m:.1f}" for r, f, m in zip(s["mean_r"], s["mean_f"], s["mean_m"])],
             }), t("segmentation.diagnostics.scores_caption"), n=seg.rfm.n)]
    rules = [(k, r) for k, d in seg.params.classes.items() for r in d.rules if class_rule_text(seg, r.rule) is None]
    if rules:  # the rules the classes table could not put into words, as written in params
        parts.append(report.table_html(pd.DataFrame({
            _col("classification"): [_label(seg.params.classes[k]) for k, _ in rules],
            _col("class"): [_label(r) for _, r in rules], _col("rule_params"): [r.rule for _, r in rules],
        }), t("segmentation.diagnostics.rules_caption")))
    fields = labels(seg, "field")
    for grouping, p in seg.profiles.items():
        if isinstance(p, Unavailable):
            continue
        parts.append(report.table_html(_tests_table(p), t("segmentation.diagnostics.tests_caption",
                                                            grouping=fields[grouping]), n=p.n))
        if not p.flagged().empty:
            parts.append(report.table_html(_residuals_table(seg, grouping), t(
                "segmentation.diagnostics.residuals_caption", grouping=fields[grouping]), n=p.n))
    if isinstance(seg.clusters, sg.BehaviourClustering):
        c = seg.clusters
        parts.append(report.figure_html(plots.silhouette(c.silhouette_, chosen=c.k_)))
        parts.append(report.note_html(t("segmentation.diagnostics.stability", reps=c.stability_.n,
                                        ari=fmt.estimate(c.stability_, "ratio", n=False))))
        parts.append(report.note_html(t("segmentation.diagnostics.sampled_fit", sample=fmt.value(sg.FIT_SAMPLE, "count"),
                                        n_init=sg.N_INIT) if len(c.labels_) > sg.FIT_SAMPLE
                                      else t("segmentation.diagnostics.full_fit", n_init=sg.N_INIT)))
    report.details(parts)


# -- outputs -------------------------------------------------------------------------------------------

def write_files(seg: sg.SegmentationResult, folder) -> pd.DataFrame:
    """Write ``segments.parquet`` and one CRM target list per action (``targets/<action>.csv``)
    into ``folder`` (segmentation's own output folder) with :func:`custlib.report.write_output`;
    target lists there of actions no longer in the playbook are removed, nothing outside the
    folder is touched. Returns the files written with their rows."""
    out = Path(folder)
    segments = seg.segments()
    report.write_output(segments, out / "segments.parquet")
    rows = [{"file": "segments.parquet", "rows": len(segments)}]
    for action, df in seg.playbook.targets.items():
        report.write_output(df, out / "targets" / f"{action}.csv")
        rows.append({"file": f"targets/{action}.csv", "rows": len(df)})
    for stale in (out / "targets").glob("*.csv"):
        if stale.stem not in seg.playbook.targets:
            stale.unlink()
    return pd.DataFrame(rows)


def write_outputs(seg: sg.SegmentationResult, data) -> pd.DataFrame:
    """Section: write the outputs into ``data.outputs("segmentation")`` and list them."""
    folder = data.outputs("segmentation")
    files = write_files(seg, folder)
    report.section(t("report.outputs"), t("segmentation.outputs.intro"))
    report.table(pd.DataFrame({_col("file"): files["file"], _col("rows"): files["rows"]}),
                 t("segmentation.outputs.caption", folder=folder.relative_to(data.project_root).as_posix()))
    return files
