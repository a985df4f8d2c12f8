"""Presentation: one module per analysis turns its numeric result and the unit's params into
what a report shows (findings, display tables, notes, warnings, output files, KPIs for the
portfolio page), in the report language. Wording lives in the catalogue (:mod:`.i18n`),
numbers are formatted by :mod:`.fmt`, HTML blocks come from :mod:`custlib.report`."""
