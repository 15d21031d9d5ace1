"""The fault suite's running totals: what was injected, what was expected, what actually happened.

Fault tests record their figures through the ``ledger`` fixture (tests/conftest.py) right next to the
assertions that check them; at the end of the session pytest prints the totals, so a run states "faults
injected 41, alerts expected 30 / delivered 30 / duplicated 0, ..." instead of a count of green dots.
Set ``NEWSRADAR_RELIABILITY_REPORT=path.json`` to also get them as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Ledger:
    faults: int = 0
    alerts_expected: int = 0
    alerts_delivered: int = 0
    alerts_duplicated: int = 0
    docs_expected: int = 0
    docs_indexed: int = 0
    docs_quarantined: int = 0
    hostile_tried: int = 0
    hostile_refused: int = 0
    tests: list[str] = field(default_factory=list)

    def fault(self, count: int = 1) -> None:
        """Faults injected: a refused connection, a 429, a killed process, a lost lease ..."""
        self.faults += count

    def alerts(self, expected: int, delivered: int, duplicated: int) -> None:
        self.alerts_expected += expected
        self.alerts_delivered += delivered
        self.alerts_duplicated += duplicated

    def documents(self, expected: int, indexed: int, quarantined: int = 0) -> None:
        self.docs_expected += expected
        self.docs_indexed += indexed
        self.docs_quarantined += quarantined

    def hostile(self, tried: int, refused: int) -> None:
        """Hostile inputs tried, and how many were refused or made inert (never executed, never a 5xx)."""
        self.hostile_tried += tried
        self.hostile_refused += refused

    def summary(self) -> str:
        return (
            f"{len(self.tests)} fault tests: faults injected {self.faults}; "
            f"alerts expected {self.alerts_expected} / delivered {self.alerts_delivered} / "
            f"duplicated {self.alerts_duplicated}; documents expected {self.docs_expected} / "
            f"indexed {self.docs_indexed} / quarantined {self.docs_quarantined}; "
            f"hostile inputs tried {self.hostile_tried} / refused or inert {self.hostile_refused}"
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")


LEDGER = Ledger()
