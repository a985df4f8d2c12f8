"""Causal estimators shared by the analyses: average treatment effects on the treated from
observational data (:mod:`.att`) and staggered difference-in-differences (:mod:`.did`)."""
