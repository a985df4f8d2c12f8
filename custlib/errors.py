"""The one error type custlib raises for bad input data or bad parameters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CustlibDataError(Exception):
    """Bad input: names the table, file, column, rule, how many rows break it and a few examples.

    ``kind`` is ``"data"`` for input tables and ``"params"`` for parameter files; the CLI maps
    both to exit code 2.
    """

    message: str
    table: str | None = None
    file: str | None = None
    column: str | None = None
    rule: str | None = None
    count: int | None = None
    total: int | None = None
    examples: list = field(default_factory=list)
    kind: str = "data"
    hint: str | None = None  # what to do; a default per kind when not given

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.file or self.table,
                f"column '{self.column}'" if self.column else None,
            )
            if part
        )
        head = f"custlib: {where}: {self.message}" if where else f"custlib: {self.message}"
        if self.count is not None and self.total is not None:
            head += f" ({self.count:,} of {self.total:,} rows)"
        if self.examples:
            shown = ", ".join(str(e) for e in self.examples[:5])
            more = ", …" if self.count and self.count > len(self.examples[:5]) else ""
            head += f"\n         examples: {shown}{more}"
        hint = self.hint or (
            "Fix the file or map the column in params."
            if self.kind == "data"
            else "Fix the parameter file."
        )
        return f"{head}\n         {hint}"
