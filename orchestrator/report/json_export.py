"""results.json: rows, cells and the method, for other programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from orchestrator.report.csv_export import flat_row
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.record import RunRecord
from orchestrator.results.saturation import SATURATION_THRESHOLD

_HISTOGRAMS: dict[str, Any] = {
    "load": {"histogram"},
    "load_by_host": {"__all__": {"histogram"}},
}


def render_json(record: RunRecord, cells: Sequence[CellResult], rows: Sequence[Row]) -> str:
    """Rows (as in results.csv), every cell result, and how to read them."""
    data: dict[str, Any] = {
        "run": record.id,
        "load_model": record.load_model(),
        "load_model_kind": "open" if record.is_open_model else "closed",
        "load_models": record.load_models,
        "points": [point.model_dump(mode="json") for point in record.points],
        "saturation_threshold": SATURATION_THRESHOLD,
        "rows": [flat_row(r) for r in rows],
        "verification": {
            name: found.model_dump(mode="json") for name, found in record.verification.items()
        },
        # Histograms go to histograms.csv: thousands of buckets per cell.
        "cells": [c.model_dump(mode="json", exclude=_HISTOGRAMS) for c in cells],
    }
    if record.precision is not None:  # a run to a precision: what it asked and reached
        data["precision"] = record.precision.model_dump(mode="json")
    if record.table_points:  # the main job: points measured only for the seed's table
        data["table_points"] = record.table_points
    return json.dumps(data, indent=2) + "\n"
