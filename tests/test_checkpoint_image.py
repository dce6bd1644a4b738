"""The checkpoint image's format (sentry/checkpoint/image.py): whatever the
bytes, decoding gives the state or ImageError with one line, never another
exception; and a round trip keeps plain data as it was."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry.checkpoint import image

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.binary(max_size=64)
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@given(st.dictionaries(st.text(max_size=8), plain, max_size=6))
@settings(max_examples=60, deadline=None)
def test_round_trip(state: dict) -> None:
    assert image.decode(image.encode(state)) == state


@given(st.binary(max_size=512))
@settings(max_examples=150, deadline=None)
def test_any_bytes_decode_or_one_line_error(data: bytes) -> None:
    """(Found by this test: a map keyed by a list is msgpack's TypeError.)"""
    try:
        image.decode(data)
    except image.ImageError as exc:
        assert "\n" not in str(exc)


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_damage_is_caught(data: st.DataObject) -> None:
    good = image.encode({"kernel": {"init": 1}, "groups": [1, 2, 3], "pad": b"x" * 64})
    pos = data.draw(st.integers(0, len(good) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(good)
    bad[pos] ^= flip
    with pytest.raises(image.ImageError):
        image.decode(bytes(bad))
    with pytest.raises(image.ImageError):
        image.decode(good[:pos])


def test_map_keyed_by_a_list_is_corrupt() -> None:
    with pytest.raises(image.ImageError, match="corrupt"):
        image.decode(b"\x81\x91\x00\x00")


def test_wrong_version_named() -> None:
    outer = msgpack.unpackb(image.encode({}))
    outer[1] = 99
    with pytest.raises(image.ImageError, match="version 99 is not supported"):
        image.decode(msgpack.packb(outer, use_bin_type=True))
