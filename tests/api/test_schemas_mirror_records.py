"""Each API response body has exactly the fields of the registry record it is built from.

The read endpoints answer with ``Body.model_validate(record.to_dict())``: a record field that the
body lacks would vanish from the API without a word (pydantic ignores extra keys), and a body
field that the record lacks would turn every such read into a 500. So each pair is compared here,
field names and types, and a record is sent through its body and back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from driftd.api import schemas
from driftd.api.schemas import (
    ApprovalOut,
    AuditOut,
    DatasetOut,
    ErrorOut,
    HistoryOut,
    ModelOut,
    RunOut,
    VerifyOut,
    VersionOut,
)
from driftd.registry.audit import AuditRecord, VerifyResult
from driftd.registry.records import (
    ApprovalInfo,
    DatasetInfo,
    HistoryEntry,
    ModelInfo,
    RunInfo,
    VersionInfo,
)

# Response body -> the record it mirrors.
MIRRORS: dict[type[BaseModel], type[Any]] = {
    ModelOut: ModelInfo,
    VersionOut: VersionInfo,
    HistoryOut: HistoryEntry,
    ApprovalOut: ApprovalInfo,
    RunOut: RunInfo,
    DatasetOut: DatasetInfo,
    AuditOut: AuditRecord,
    VerifyOut: VerifyResult,
}
PAIRS = pytest.mark.parametrize(
    ("body", "record"), list(MIRRORS.items()), ids=[b.__name__ for b in MIRRORS]
)


def _record_fields(record: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(record)
    return {f.name: hints[f.name] for f in dataclasses.fields(record)}


def _body_fields(body: type[BaseModel]) -> dict[str, Any]:
    # The name on the wire: DatasetOut's ``schema_`` is ``schema`` (BaseModel has a ``schema``).
    return {field.alias or name: field.annotation for name, field in body.model_fields.items()}


def _sample(hint: Any, n: int) -> Any:
    """A value of type ``hint``, different for each ``n``; an optional field is filled in."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)), n)
    origin = typing.get_origin(hint) or hint
    if origin is dict:
        return {f"key-{n}": [n, "x"] if args[1] is Any else _sample(args[1], n)}
    if origin is list:
        return [_sample(args[0], n)]
    return {bool: True, int: 10 + n, float: 0.5 + n, str: f"text-{n}"}[origin]


@PAIRS
def test_each_response_body_has_its_records_fields_and_types(
    body: type[BaseModel], record: type[Any]
) -> None:
    assert _body_fields(body) == _record_fields(record)


@PAIRS
def test_a_record_goes_through_its_response_body_unchanged(
    body: type[BaseModel], record: type[Any]
) -> None:
    hints = _record_fields(record)
    rec = record(**{name: _sample(hint, n) for n, (name, hint) in enumerate(hints.items())})
    plain = dataclasses.asdict(rec)
    # Both ways the endpoints build a body: from the record's plain dict, and from its attributes.
    from_dict = body.model_validate(rec.to_dict() if hasattr(rec, "to_dict") else plain)
    from_attributes = body.model_validate(rec, from_attributes=True)
    for out in (from_dict, from_attributes):
        assert out.model_dump(mode="json", by_alias=True) == plain


def test_every_response_body_built_from_a_record_is_compared() -> None:
    bodies = {
        obj
        for obj in vars(schemas).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == schemas.__name__
        and obj.__name__.endswith("Out")
    }
    assert bodies - MIRRORS.keys() == {ErrorOut}  # an error is not a record
