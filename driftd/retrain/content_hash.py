"""The canonical content hash of snapshot splits and of a whole dataset.

Content hash (``driftd-canonical-v1``): SHA-256 over a canonical byte form of a split's sorted
columns, independent of Parquet encoding, compression, row groups and chunking. Header
``b"driftd-canonical-v1\\0"``, u64 column count, u64 row count; then per column in schema
order: length-prefixed UTF-8 name, length-prefixed canonical type (dictionary<string> and
large_string are ``string``), u64 null count; if it has nulls, one validity byte (0/1) per row;
then the values: fixed-width types as raw little-endian bytes (nulls as 0, NaNs as one canonical
NaN), strings as the u64 LE length of every value followed by all their UTF-8 bytes. All integers
are u64 LE. The dataset hash is SHA-256 over ``b"driftd-dataset-v1\\0"`` and, per split in order,
``name\\0hex-digest\\0``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

HASH_SCHEME = "driftd-canonical-v1"
_U64 = np.dtype("<u8")


def canonical_type(t: pa.DataType) -> str:
    """The type name that goes into the hash; encodings of the same values share one name."""
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return str(t)


def _lp(s: str) -> bytes:
    b = s.encode()
    return np.array([len(b)], _U64).tobytes() + b


def _fixed(chunk: pa.Array) -> npt.NDArray[Any]:
    if chunk.null_count:
        zero = False if pa.types.is_boolean(chunk.type) else 0
        chunk = pc.fill_null(chunk, pa.scalar(zero, chunk.type))
    a = np.asarray(chunk.to_numpy(zero_copy_only=False))
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        if nan.any():
            a = np.where(nan, a.dtype.type(np.nan), a)
    if a.dtype.kind == "b":
        a = a.view(np.uint8)
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))


def _strings(chunk: pa.Array) -> tuple[npt.NDArray[Any], memoryview]:
    """Lengths (u64 LE) and the concatenated UTF-8 bytes of a string chunk (nulls as "")."""
    if pa.types.is_dictionary(chunk.type):
        chunk = chunk.dictionary.take(chunk.indices)
    if chunk.null_count:
        chunk = pc.fill_null(chunk, "")
    wide = pa.types.is_large_string(chunk.type)
    _, off_buf, data_buf = chunk.buffers()
    offsets = np.frombuffer(off_buf, np.int64 if wide else np.int32)
    offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
    data = memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])] if data_buf else memoryview(b"")
    return np.diff(offsets).astype(_U64), data


def _hash_column(h: Any, name: str, col: pa.ChunkedArray) -> None:
    kind = canonical_type(col.type)
    h.update(_lp(name) + _lp(kind) + np.array([col.null_count], _U64).tobytes())
    chunks = col.chunks
    if col.null_count:
        for c in chunks:
            h.update(np.asarray(c.is_valid().to_numpy(zero_copy_only=False)).view(np.uint8))
    if kind == "string":
        parts = [_strings(c) for c in chunks]
        for lengths, _ in parts:
            h.update(lengths)
        for _, data in parts:
            h.update(data)
    elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or kind == "bool":
        for c in chunks:
            h.update(_fixed(c))
    else:
        raise TypeError(f"column {name!r} has type {col.type}, which the hash does not cover")


def content_sha256(table: pa.Table) -> str:
    """The canonical content hash of a table (see the module docstring)."""
    h = hashlib.sha256(HASH_SCHEME.encode() + b"\0")
    h.update(np.array([table.num_columns, table.num_rows], _U64).tobytes())
    for name, col in zip(table.column_names, table.columns, strict=True):
        _hash_column(h, name, col)
    return h.hexdigest()


def dataset_sha256(split_digests: Sequence[tuple[str, str]]) -> str:
    """The dataset hash: over each split's name and content hash, in split order."""
    h = hashlib.sha256(b"driftd-dataset-v1\0")
    for name, digest in split_digests:
        h.update(f"{name}\0{digest}\0".encode())
    return h.hexdigest()
