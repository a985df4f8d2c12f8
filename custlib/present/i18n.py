"""The language catalogue: every sentence, heading, label and unit a report shows, per language.

Texts live in ``custlib/locales/<language>/*.yaml`` (one file per area, merged into one
catalogue per language); keys are dotted paths (``segmentation.findings.concentration``) and
values are :meth:`str.format` templates. :func:`t` looks a key up in the current language, set
once per report by :func:`set_language` (``language`` in params, ``en`` or ``zh``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

LOCALES = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("en", "zh")
_current = {"language": "en"}


def _flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    """All texts of one language, keyed by dotted path; a key defined twice is an error."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
    texts: dict[str, str] = {}
    for path in sorted((LOCALES / language).glob("*.yaml")):
        flat = _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        twice = sorted(set(flat) & set(texts))
        if twice:
            raise ValueError(f"{path}: keys defined in another file too: {twice[:5]}")
        texts.update(flat)
    return texts


def set_language(language: str) -> None:
    """Language of everything :func:`t` returns from now on in this process."""
    catalogue(language)  # fails early on an unknown language
    _current["language"] = language


def language() -> str:
    """The current report language."""
    return _current["language"]


def t(key: str, **values) -> str:
    """The text of ``key`` in the current language with ``values`` filled in.

    A key missing from the catalogue raises KeyError (a test compares the catalogues, so a
    text cannot exist in one language only)."""
    template = catalogue(language())[key]
    return template.format(**values) if values else template


def has(key: str) -> bool:
    """True when ``key`` is in the current language's catalogue."""
    return key in catalogue(language())


def name(kind: str, value) -> str:
    """Display name of a code value (a column, a group, a method ...): ``names.<kind>.<value>``
    when the catalogue has it, else the value itself (category values from the data, such as
    regions or Chinese CRM values, are shown as they are)."""
    key = f"names.{kind}.{value}"
    return t(key) if has(key) else str(value)


def unavailable_reason(u) -> str:
    """The sentence of a :class:`custlib.stats.Unavailable` in the current language: catalogue
    terms translated, table names shown by their display name, whole numbers with separators."""
    from custlib.stats import Term

    def show(k, v):
        if isinstance(v, Term):
            return t(v.key)
        if k == "table":
            return name("table", v)
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    return t(u.key, **{k: show(k, v) for k, v in u.values.items()})
