"""state_codec: versioned msgpack with numpy arrays, and nothing that needs pickle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftd.daemon import state_codec
from driftd.errors import StateVersionError

KIND = "test.state"


def assert_same(a: Any, b: Any) -> None:
    """Deep equality where arrays must match in dtype, shape and values."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        # The byte order may be normalised; the kind, width and shape may not change.
        assert (a.dtype.kind, a.dtype.itemsize, a.shape) == (
            b.dtype.kind,
            b.dtype.itemsize,
            b.shape,
        )
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict)
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list)  # msgpack has one sequence type
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert type(a) is type(b)
        assert a == b or (a != a and b != b)  # NaN equals itself here


def round_trip(state: Any) -> Any:
    return state_codec.loads(state_codec.dumps(KIND, 3, state), KIND, 3)


rng = np.random.default_rng(0)
NESTED = {
    "counts": {"a": 1, "b": -2},
    "name": "fraud",
    "flag": True,
    "nothing": None,
    "ratio": 0.25,
    "nan": float("nan"),
    "ids": ["p1", "p2"],
    "arrays": {
        "f64": rng.standard_normal((3, 4)),
        "f32": rng.standard_normal(5).astype(np.float32),
        "f16": np.array([1.5, -2.0], dtype=np.float16),
        "i32": np.arange(-3, 3, dtype=np.int32),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "bool": np.array([[True, False], [False, True]]),
        "empty": np.empty((0, 7)),
        "big_endian": np.arange(4, dtype=">i4"),
        "with_nan": np.array([np.nan, np.inf, -np.inf]),
    },
    "list_of_arrays": [np.ones(2), np.zeros((2, 2), dtype=np.int64)],
    "deep": [{"x": [1, 2, {"y": np.arange(3, dtype=np.uint8)}]}],
}


def test_round_trip_of_nested_state_with_arrays_of_many_dtypes() -> None:
    assert_same(round_trip(NESTED), NESTED)


def test_zero_dimensional_arrays_keep_their_shape() -> None:
    arr = np.array(1.5)
    out = round_trip({"a": arr})["a"]
    assert out.shape == ()
    assert out.dtype == arr.dtype
    assert out.item() == arr.item()


def test_non_contiguous_and_fortran_arrays_round_trip() -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    state = {"t": base.T, "strided": base[::2, 1::3], "fortran": np.asfortranarray(base)}
    out = round_trip(state)
    for k, arr in state.items():
        np.testing.assert_array_equal(out[k], arr)
        assert out[k].shape == arr.shape


def test_numpy_scalars_become_python_values() -> None:
    out = round_trip({"i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True)})
    assert out == {"i": 7, "f": 0.5, "b": True}
    assert type(out["i"]) is int


@pytest.mark.parametrize(
    "value",
    [
        np.array(["a", "b"], dtype=object),
        np.array(["a", "b"]),
        np.array([1, 2], dtype="datetime64[s]"),
        np.array([1 + 2j]),
        object(),
    ],
    ids=["object-array", "str-array", "datetime-array", "complex-array", "object"],
)
def test_values_that_would_need_pickle_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        state_codec.dumps(KIND, 1, {"x": value})


def test_wrong_kind_is_refused() -> None:
    blob = state_codec.dumps("other.state", 1, {})
    with pytest.raises(StateVersionError, match=r"test\.state"):
        state_codec.loads(blob, KIND, 1)


def test_wrong_version_is_refused_naming_both_versions() -> None:
    blob = state_codec.dumps(KIND, 2, {})
    with pytest.raises(StateVersionError, match=r"version 2.*version 1"):
        state_codec.loads(blob, KIND, 1)


def test_a_blob_that_is_not_a_state_envelope_is_refused() -> None:
    import msgspec

    for obj in ([1, 2], {"v": 1, "state": {}}, "text"):
        with pytest.raises(StateVersionError):
            state_codec.loads(msgspec.msgpack.encode(obj), KIND, 1)


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ({"kind": KIND, "v": 4, "state": None}, None),
        ({"kind": KIND, "v": 3, "state": None}, r"has version 3; this driftd reads version 4"),
        ({"kind": KIND, "v": "4", "state": None}, r"has version '4'"),
        ({"kind": KIND, "state": None}, r"has version None"),
        ({"kind": "other", "v": 4, "state": None}, r"expected a .* state blob, got dict"),
        ([KIND, 4], r"expected a .* state blob, got list"),
    ],
    ids=["expected", "older", "version-as-text", "no-version", "other-kind", "not-a-mapping"],
)
def test_require_state_version_accepts_only_the_expected_envelope(
    envelope: object, error: str | None
) -> None:
    if error is None:
        assert state_codec.require_state_version(envelope, KIND, 4) is None
    else:
        with pytest.raises(StateVersionError, match=error):
            state_codec.require_state_version(envelope, KIND, 4)
