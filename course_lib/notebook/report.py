"""Key metrics a notebook reports for the headless run's summary table.

``record(name=value, ...)`` appends to the JSON file named by ``$COURSE_METRICS_FILE``
(set by ``python -m course_lib run-notebooks``) and does nothing when it is unset,
so notebooks call it freely.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["record"]


def record(**metrics: float | int | str) -> None:
    """Add ``metrics`` to this notebook's summary row (only under ``run-notebooks``)."""
    target = os.environ.get("COURSE_METRICS_FILE")
    if not target:
        return
    path = Path(target)
    current = json.loads(path.read_text()) if path.exists() else {}
    for key, value in metrics.items():
        current[key] = round(value, 4) if isinstance(value, float) else value
    path.write_text(json.dumps(current, indent=1))
