"""Versioned, pickle-free serialisation of state: msgpack metadata plus raw array buffers.

State is plain data (dicts, lists, str, int, float, bool, None) and numpy arrays of numeric
dtypes. The msgpack header describes the structure; each array in it is a reference to a raw
little-endian buffer stored after the header, so saving a million-row column costs one memcpy
and loading it costs none (loaded arrays are read-only views of the blob).

Layout: ``b"DSC1"``, header length (u64), header (msgpack), buffer lengths (u64 each), buffers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import numpy as np

from driftd.contracts.versioning import require_state_version
from driftd.errors import StateVersionError

MAGIC = b"DSC1"
_ARRAY = 1
_ALLOWED = frozenset("?bBhHiIlLqQefd")
_U64 = struct.Struct("<Q")


def dumps(kind: str, version: int, state: Any) -> bytes:
    """Serialise ``state`` with its kind and version."""
    buffers: list[np.ndarray[Any, Any]] = []

    def enc_hook(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.char not in _ALLOWED:
                raise TypeError(f"cannot serialise arrays of dtype {obj.dtype}")
            # np.ascontiguousarray would turn a 0-d array into shape (1,).
            arr = np.require(obj, dtype=obj.dtype.newbyteorder("<"), requirements="C")
            buffers.append(arr)
            ref = (arr.dtype.str, list(arr.shape), len(buffers) - 1)
            return msgspec.msgpack.Ext(_ARRAY, msgspec.msgpack.encode(ref))
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"cannot serialise {type(obj).__name__}")

    header = msgspec.msgpack.Encoder(enc_hook=enc_hook).encode(
        {"kind": kind, "v": version, "state": state}
    )
    lengths = b"".join(_U64.pack(a.nbytes) for a in buffers)
    raw: list[Any] = [a.reshape(-1).view(np.uint8) for a in buffers]
    return b"".join(
        [
            MAGIC,
            _U64.pack(len(header)),
            header,
            _U64.pack(len(buffers)),
            lengths,
            *raw,
        ]
    )


def loads(
    blob: bytes,
    kind: str,
    version: int,
    upgrades: Mapping[int, Callable[[Any], Any]] | None = None,
) -> Any:
    """Deserialise a blob written by dumps(); check its kind and version. ``upgrades`` maps an
    older version that is still read to a function turning its state into this version's."""
    view = memoryview(blob)
    if view[:4] != MAGIC:
        raise StateVersionError(f"expected a {kind!r} state blob (driftd state codec 1)")
    (hlen,) = _U64.unpack_from(view, 4)
    header = view[12 : 12 + hlen]
    pos = 12 + hlen
    (count,) = _U64.unpack_from(view, pos)
    pos += 8
    offsets = []
    start = pos + 8 * count
    for i in range(count):
        (n,) = _U64.unpack_from(view, pos + 8 * i)
        offsets.append((start, n))
        start += n
    if start != len(view):
        raise StateVersionError(f"{kind} state blob is {len(view)} bytes, expected {start}")

    def ext_hook(code: int, data: memoryview) -> Any:
        if code != _ARRAY:
            raise ValueError(f"unknown extension type {code}")
        dtype, shape, index = msgspec.msgpack.decode(data)
        off, n = offsets[index]
        arr = np.frombuffer(view[off : off + n], dtype=np.dtype(dtype))
        return arr.reshape(shape)

    obj = msgspec.msgpack.Decoder(ext_hook=ext_hook).decode(header)
    old = obj.get("v") if isinstance(obj, dict) and obj.get("kind") == kind else None
    if upgrades and type(old) is int and old in upgrades:
        return upgrades[old](obj["state"])
    require_state_version(obj, kind, version)
    return obj["state"]
