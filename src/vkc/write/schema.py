"""The artifact JSON Schema (shipped as artifact.schema.json) and its one serialisation."""
from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

SCHEMA_FILE = "artifact.schema.json"
KERNEL_TYPES = ("cuda", "triton")
_MAX_MSG = 160


@functools.lru_cache(maxsize=1)
def artifact_schema() -> dict[str, Any]:
    """The artifact schema, loaded from the package data."""
    text = resources.files("vkc.write").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = artifact_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_error(obj: Any) -> str | None:
    """None when ``obj`` matches the schema, else a one-line description of the best error."""
    err = best_match(_validator().iter_errors(obj))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "top level"
    msg = " ".join(err.message.split())
    if len(msg) > _MAX_MSG:
        msg = msg[: _MAX_MSG - 3] + "..."
    return f"{msg} (at {where})"


def build_artifact(name: str, kernel_type: str, source_code: str, invocation_example: str) -> dict[str, Any]:
    """The artifact object with the fixed key order."""
    return {
        "name": name,
        "kernel": {
            "kernel_type": kernel_type,
            "source_code": source_code,
            "invocation_example": invocation_example,
        },
    }


def dumps_artifact(obj: dict[str, Any]) -> bytes:
    """The one serialisation: 2-space indent, UTF-8 unescaped, trailing newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_artifact(data: bytes) -> Any:
    """Parse artifact bytes (strict UTF-8, no duplicate keys); ValueError with a one-line message."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (JSON has no NaN/Infinity)")
