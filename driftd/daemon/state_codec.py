"""Versioned, pickle-free serialisation of state: msgpack with numpy arrays as extensions.

State is plain data (dicts, lists, str, int, float, bool, None) and numpy arrays of numeric
dtypes; arrays travel as raw little-endian buffers, so a million-row column costs a memcpy.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from driftd.errors import StateVersionError

_NDARRAY = 1
_ALLOWED = frozenset("?bBhHiIlLqQefdg")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.char not in _ALLOWED:
            raise TypeError(f"cannot serialise arrays of dtype {obj.dtype}")
        arr = np.ascontiguousarray(obj)
        header = msgspec.msgpack.encode((arr.dtype.str, arr.shape))
        return msgspec.msgpack.Ext(
            _NDARRAY, len(header).to_bytes(4, "little") + header + arr.tobytes()
        )
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _ext_hook(code: int, data: memoryview) -> Any:
    if code != _NDARRAY:
        raise ValueError(f"unknown extension type {code}")
    n = int.from_bytes(data[:4], "little")
    dtype, shape = msgspec.msgpack.decode(data[4 : 4 + n])
    arr = np.frombuffer(data[4 + n :], dtype=np.dtype(dtype)).reshape(shape)
    return arr.copy()  # own the memory; the input buffer may be reused


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_hook)


def dumps(kind: str, version: int, state: Any) -> bytes:
    """Serialise ``state`` with its kind and version."""
    return _encoder.encode({"kind": kind, "v": version, "state": state})


def loads(blob: bytes, kind: str, version: int) -> Any:
    """Deserialise a blob written by dumps(); check its kind and version."""
    obj = _decoder.decode(blob)
    require_state_version(obj, kind, version)
    return obj["state"]


def require_state_version(obj: Any, kind: str, version: int) -> None:
    """Raise StateVersionError unless ``obj`` is a ``kind`` blob of ``version``."""
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        raise StateVersionError(f"expected a {kind!r} state blob, got {type(obj).__name__}")
    if obj.get("v") != version:
        raise StateVersionError(
            f"{kind} state has version {obj.get('v')!r}; this driftd reads version {version}"
        )
