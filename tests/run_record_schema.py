"""The documented JSON shape of a run (docs/run-record.schema.json), for tests to check
real outputs against."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "run-record.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

TIME_FIELDS = ("created", "ended", "exported", "started")


def validate(value: Any, definition: str = "run") -> None:
    """Raise jsonschema's ValidationError unless ``value`` is a ``definition`` of the schema;
    every time in it must be ISO 8601 in UTC."""
    Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": SCHEMA["$defs"]}).validate(
        value)
    _check_times(value)


def machine_fields() -> list[str]:
    """A machine record's fields, in the documented order."""
    return list(SCHEMA["$defs"]["machine_run"]["properties"])


def csv_header() -> list[str]:
    """The CSV export's columns the schema documents: the machine fields, projected."""
    properties = SCHEMA["$defs"]["machine_run"]["properties"]
    return [spec.get("x-csv-column", name) for name, spec in properties.items()]


def _check_times(value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check_times(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in TIME_FIELDS and item is not None:
                assert datetime.fromisoformat(item).utcoffset() == timedelta(0), (key, item)
            elif key != "command":
                _check_times(item)
