"""The compiled bit packing (netcode/statesync/bitpack.py) gives numpy's bytes and choices exactly.

Snapshots must decode the same whichever packer wrote them, and replays compare bytes: so
each function is compared, on random columns, with :mod:`netcode.statesync.bits`' numpy path (the
reference: ``bits._fast`` set to None). Both the compiled module (when this install built
it) and its source run as plain Python are checked, and what it declines (other dtypes,
other shapes, negative values) must be declined, not mispacked.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import numpy_path, source_twin
from netcode import compiled
from netcode.errors import ProtocolError
from netcode.statesync import bits
from netcode.session.wire import Reader

_TWINS = {"source": source_twin("netcode.statesync.bitpack")}
if compiled.bitpack is not None:
    _TWINS["compiled"] = compiled.bitpack


# Columns as the encoder makes them: small deltas with a few far outliers, ids' gaps, or
# anything up to 2**63 - 1; short (Python-int path in bits) and long (numpy path).
_value = st.one_of(st.integers(0, 3), st.integers(0, 300), st.integers(0, 2**17), st.integers(0, 2**63 - 1))
columns = st.lists(st.one_of(st.integers(0, 40), _value), max_size=300)


def _as_column(values, strided: bool) -> np.ndarray:
    v = np.array(values, np.int64)
    if strided:  # a column of a (rows, columns) array, as the encoder passes them
        block = np.zeros((len(v), 3), np.int64)
        block[:, 1] = v
        return block[:, 1]
    return v


@pytest.mark.parametrize("twin", list(_TWINS))
@given(values=columns, strided=st.booleans(), extra=st.integers(0, 5))
def test_the_compiled_packer_matches_numpy(twin, values, strided, extra):
    fast = _TWINS[twin]
    v = _as_column(values, strided)
    with numpy_path() as reference:
        top = reference.width_of(v)
        widths = {top, min(64, top + extra), 64}
        packed_at = {w: reference.pack_uint(v, w) for w in widths}
        chosen = reference._choose_width(v)
        escaped = reference.pack_escaped(v)
    assert fast.width_of(v) == top
    for width in widths:
        assert fast.pack_uint(v, width) == packed_at[width]
    assert fast.choose_width(v) == chosen
    assert fast.pack_escaped(v) == escaped
    r = Reader(escaped)
    assert np.array_equal(bits.unpack_escaped(r, len(v)), v)
    r.done()


@pytest.mark.parametrize("twin", list(_TWINS))
@given(values=columns, strided=st.booleans(), zeros=st.lists(st.booleans(), max_size=300))
def test_the_compiled_nonzero_packer_matches_numpy(twin, values, strided, zeros):
    """A snapshot's update column: the count, mask and packed values of the deltas that
    are not 0, as numpy's mask, packbits and gather give them (zeros mixed in)."""
    fast = _TWINS[twin]
    values = [0 if z else x for x, z in zip(values, zeros + [False] * len(values))]
    v = _as_column(values, strided)
    with numpy_path() as reference:
        expected = reference.pack_nonzero(v)
    # What a receiver reads back: the count, the mask bit of each entity, the values sent.
    changed = v != 0
    count, mask, packed = expected
    assert count == int(changed.sum())
    assert np.array_equal(bits.unpack_uint(mask, len(v), 1).astype(bool), changed)
    r = Reader(packed)
    assert np.array_equal(bits.unpack_escaped(r, count), v[changed])
    r.done()
    assert fast.pack_nonzero(v) == expected
    assert bits.pack_nonzero(v) == expected


@pytest.mark.parametrize("twin", list(_TWINS))
@given(gaps=columns, first=st.integers(0, 1000), strided=st.booleans())
def test_the_compiled_gap_packer_matches_numpy(twin, gaps, first, strided):
    """Entity ids after the first as their gaps less one (np.diff(ids) - 1), packed."""
    fast = _TWINS[twin]
    gaps = [g % 5000 for g in gaps]
    ids = _as_column(list(np.cumsum([first] + [g + 1 for g in gaps])), strided)
    with numpy_path() as reference:
        expected = reference.pack_gaps(ids)
    r = Reader(expected)  # the ids rebuilt from the first and the gaps, as a receiver does
    assert np.array_equal(ids[0] + np.cumsum(bits.unpack_escaped(r, len(ids) - 1) + 1), ids[1:])
    r.done()
    assert fast.pack_gaps(ids) == expected
    assert bits.pack_gaps(ids) == expected


def test_the_compiled_packers_decline_what_they_do_not_take():
    """Negative values, ids out of order, other dtypes and shapes: None, and bits' numpy
    path answers (the same bytes as before for valid int32 input)."""
    for fast in _TWINS.values():
        assert fast.pack_nonzero(np.array([1, -2, 0], np.int64)) is None
        assert fast.pack_nonzero(np.array([1, 2, 0], np.int32)) is None
        assert fast.pack_nonzero(np.zeros((2, 2), np.int64)) is None
        assert fast.pack_gaps(np.array([3, 3], np.int64)) is None
        assert fast.pack_gaps(np.array([4, 2], np.int64)) is None
        assert fast.pack_gaps(np.array([], np.int64)) is None
        assert fast.pack_gaps(np.array([1, 2], np.int32)) is None
    assert bits.pack_gaps(np.array([1, 5, 6], np.int32)) == bits.pack_escaped(np.array([3, 0], np.int64))
    assert bits.pack_nonzero(np.array([0, 7, 0], np.int32))[:2] == (1, bytes([2]))


@pytest.mark.parametrize("twin", list(_TWINS))
@given(values=columns, extra=st.integers(0, 5))
def test_the_compiled_unpacker_matches_numpy(twin, values, extra):
    fast = _TWINS[twin]
    v = np.array(values, np.int64)
    with numpy_path() as reference:
        for width in {max(1, reference.width_of(v)), min(64, max(1, reference.width_of(v)) + extra), 64}:
            packed = reference.pack_uint(v, width)
            expected = reference.unpack_uint(packed, len(v), width)
            got = fast.unpack_uint(memoryview(packed), len(v), width)
            assert got.dtype == np.int64 and np.array_equal(got, expected), width


@pytest.mark.parametrize("twin", list(_TWINS))
@given(values=columns, before=st.binary(max_size=3), after=st.binary(max_size=3))
def test_the_compiled_escaped_unpacker_matches_numpy_inside_a_packet(twin, values, before, after):
    fast = _TWINS[twin]
    v = np.array(values, np.int64)
    with numpy_path() as reference:
        packed = reference.pack_escaped(v)
    data = before + packed + after
    got, end = fast.unpack_escaped(memoryview(data), len(before), len(data), len(v))
    assert end == len(before) + len(packed) and np.array_equal(got, v)


@pytest.mark.parametrize("twin", list(_TWINS))
@given(data=st.binary(max_size=40), count=st.integers(0, 30))
def test_the_compiled_escaped_unpacker_agrees_with_numpy_on_hostile_bytes(twin, data, count):
    """Whatever the bytes: where numpy reads values, the compiled path reads the same or
    declines; where numpy raises, the compiled path declines (so bits raises numpy's error)."""
    fast = _TWINS[twin]
    with numpy_path() as reference:
        r = Reader(data)
        try:
            expected = (reference.unpack_escaped(r, count), r.pos)
        except ProtocolError:
            expected = None
    got = fast.unpack_escaped(data, 0, len(data), count)
    if expected is None:
        assert got is None
    elif got is not None:
        assert np.array_equal(got[0], expected[0]) and got[1] == expected[1]


@pytest.mark.parametrize("twin", list(_TWINS))
def test_the_compiled_unpacker_declines_malformed_input_and_bits_names_the_fault(twin):
    fast = _TWINS[twin]
    assert fast.unpack_uint(b"\x07", 1, 3) is not None  # 3 bits, no padding set
    assert fast.unpack_uint(b"\x0f", 1, 3) is None  # a padding bit set
    assert fast.unpack_uint(b"\x07\x00", 1, 3) is None  # a byte too many
    assert fast.unpack_uint(b"", 1, 3) is None
    assert fast.unpack_uint(b"\x00", 1, 0) is None and fast.unpack_uint(b"\x00", 1, 65) is None
    for data, count, width, reason in ((b"\x0f", 1, 3, "bad_padding"), (b"\x07\x00", 1, 3, "truncated"), (b"\x00", 1, 65, "bad_width")):
        with pytest.raises(ProtocolError) as e:
            bits.unpack_uint(data, count, width)
        assert e.value.reason == reason


@pytest.mark.parametrize("twin", list(_TWINS))
def test_the_compiled_packer_matches_numpy_on_every_short_column_of_edge_values(twin):
    """Escaping is a close call on short columns and around powers of two: all columns of
    up to three values from a set of edges, exhaustively."""
    fast = _TWINS[twin]
    edges = [0, 1, 2, 3, 6, 7, 8, 254, 255, 256, 2**17 - 2, 2**17 - 1, 2**17, 2**63 - 1]
    cols = [np.array(c, np.int64) for k in range(4) for c in itertools.product(edges, repeat=k)]
    with numpy_path() as reference:
        expected = [(reference._choose_width(v), reference.pack_escaped(v)) for v in cols]
    assert [(fast.choose_width(v), fast.pack_escaped(v)) for v in cols] == expected


@pytest.mark.parametrize("twin", list(_TWINS))
def test_the_compiled_packer_declines_what_it_does_not_take(twin):
    fast = _TWINS[twin]
    declined = [
        np.array([1, 2, 3], np.int32),
        np.array([1.0, 2.0]),
        np.array([[1, 2], [3, 4]], np.int64),
        np.array([5, -1, 7], np.int64),
        [1, 2, 3],
    ]
    for v in declined:
        assert fast.width_of(v) is None and fast.choose_width(v) is None and fast.pack_escaped(v) is None
        assert fast.pack_uint(v, 8) is None
    assert fast.pack_uint(np.array([1, 2], np.int64), 65) is None
    # bits still packs them, with numpy (here: an int32 column, as the encoder never passes).
    v = np.array([3, 900, 2], np.int32)
    assert bits.pack_escaped(v) == bits.pack_escaped(v.astype(np.int64))


def test_the_install_compiled_the_packer_where_it_can():
    """Where the receive loop was built, bitpack must be too: the same compiler and Cython."""
    if compiled.load("netcode.mode.dispatch") is not None:
        assert compiled.bitpack is not None and compiled.bitpack.compiled, compiled.statuses
        assert bits._fast is compiled.bitpack


def _laid_out(table: np.ndarray, layout: str) -> np.ndarray:
    """``table``'s values in another memory layout, as a snapshot's tables may come."""
    if layout == "fortran":
        return np.asfortranarray(table)
    if layout == "strided":  # every other row and every third column of a wider block
        block = np.zeros((2 * len(table), 3 * table.shape[1]), np.int64)
        block[::2, 1::3] = table
        return block[::2, 1::3]
    if layout == "reversed":  # negative strides: the values are read back to front
        return np.ascontiguousarray(table[::-1, ::-1])[::-1, ::-1]
    return np.ascontiguousarray(table)


@st.composite
def tables(draw):
    """A snapshot's create codes or update deltas: rows of entities (maybe none), a few
    columns, some of them all zero, in any of the layouts above."""
    rows, cols = draw(st.integers(0, 80)), draw(st.integers(0, 6))
    cell = st.one_of(st.just(0), st.integers(0, 40), _value)
    table = np.array(draw(st.lists(cell, min_size=rows * cols, max_size=rows * cols)), np.int64).reshape(rows, cols)
    table[:, np.array(draw(st.lists(st.booleans(), min_size=cols, max_size=cols)), bool)] = 0
    return _laid_out(table, draw(st.sampled_from(["C", "fortran", "strided", "reversed"])))


def _per_column(table: np.ndarray):
    """What bits' numpy path packs for each column on its own: the expected bytes."""
    with numpy_path() as reference:
        return [reference.pack_escaped(col) for col in table.T], [reference.pack_nonzero(col) for col in table.T]


def _widths(table: np.ndarray) -> list[int]:
    """Each column's width as bits' numpy path gives it on its own."""
    with numpy_path() as reference:
        return [reference.width_of(col) for col in table.T]


@pytest.mark.parametrize("twin", list(_TWINS))
@given(table=tables())
def test_the_column_packers_give_each_columns_own_bytes(twin, table):
    """Every column of a table in one call: the same bytes as each column packed alone,
    whatever the table's layout, with the zeros of each column skipped for the updates."""
    fast = _TWINS[twin]
    escaped, nonzero = _per_column(table)
    assert fast.pack_escaped_columns(table) == escaped
    assert fast.pack_nonzero_columns(table) == nonzero
    assert bits.pack_escaped_columns(table) == escaped
    assert bits.pack_nonzero_columns(table) == nonzero
    assert fast.width_of_columns(table) == bits.width_of_columns(table) == _widths(table)


@pytest.mark.parametrize("twin", list(_TWINS))
def test_the_column_packers_on_edge_tables(twin):
    """No rows, no columns, all-zero columns and columns that need escapes."""
    fast = _TWINS[twin]
    assert fast.pack_escaped_columns(np.zeros((0, 3), np.int64)) == [b"\x00"] * 3
    assert fast.pack_nonzero_columns(np.zeros((0, 3), np.int64)) == [(0, b"", b"\x00")] * 3
    assert fast.pack_escaped_columns(np.zeros((4, 0), np.int64)) == []
    assert fast.pack_nonzero_columns(np.zeros((4, 0), np.int64)) == []
    small = [0, 1, 2, 3, 1, 0, 2, 1, 3, 2, 0, 1]
    table = np.array([small, small[::-1], [0] * 12, [x * 5 for x in small]], np.int64).T.copy()
    table[[2, 7], 0] = [2**40, 2**63 - 1]  # far outliers: escaped above width 2
    table[5, 3] = 2**20
    escaped, nonzero = _per_column(table)
    assert [e[0] & bits._ESCAPED for e in escaped] == [bits._ESCAPED, 0, 0, bits._ESCAPED]
    assert nonzero[2] == (0, bytes(2), b"\x00")
    for layout in ("C", "fortran", "strided", "reversed"):
        t = _laid_out(table, layout)
        assert fast.pack_escaped_columns(t) == escaped and fast.pack_nonzero_columns(t) == nonzero, layout
        assert fast.width_of_columns(t) == [63, 2, 0, 21], layout


def test_the_column_packers_decline_what_they_do_not_take():
    """A negative value anywhere, other dtypes and shapes: None, and bits packs them
    column by column (numpy's answer for an int32 table)."""
    negative = np.arange(12, dtype=np.int64).reshape(4, 3)
    negative[3, 2] = -1
    declined = [negative, np.arange(4, dtype=np.int64), np.zeros((2, 2), np.int32), np.zeros((2, 2, 2), np.int64), [[1, 2], [3, 4]]]
    for fast in _TWINS.values():
        for table in declined:
            assert fast.pack_escaped_columns(table) is None and fast.pack_nonzero_columns(table) is None
            assert fast.width_of_columns(table) is None
    table = np.array([[0, 5], [7, 0], [900, 1]], np.int32)
    assert bits.pack_escaped_columns(table) == bits.pack_escaped_columns(table.astype(np.int64))
    assert bits.pack_nonzero_columns(table) == bits.pack_nonzero_columns(table.astype(np.int64))
    assert bits.width_of_columns(table) == [10, 3]
    assert bits.width_of_columns(negative) == [int(col.max()).bit_length() for col in negative.T]  # numpy's answer, column by column
