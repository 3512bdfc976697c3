"""v2 input tensors: the ``inputs`` list read and checked (JSON data or binary data after the JSON header).

Numeric tensors become NumPy arrays in one call each (``np.asarray`` on the parsed JSON list, or
``np.frombuffer`` on binary data); there is no per-row Python except for the elements of BYTES tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelsteward.domain.records import ColumnType
from modelsteward.serving.protocols.frames import string_array, to_column
from modelsteward.serving.protocols.v2_wire import DATATYPES, HEADER_LENGTH, U32, invalid


@dataclass(slots=True)
class Tensor:
    """One input tensor as the request gave it, its shape checked, its data not yet read."""

    index: int
    name: str
    datatype: str
    shape: tuple[int, ...]
    count: int
    data: Any  # the JSON list, or the tensor's bytes when sent as binary data
    binary: bool

    @property
    def where(self) -> str:
        return f"inputs[{self.index}]"


def split_body(body: bytes, header_length: int | None) -> tuple[bytes | memoryview, memoryview]:
    """The JSON header and the binary data after it (empty without ``header_length``)."""
    if header_length is None:
        return body, memoryview(b"")
    if isinstance(header_length, bool) or not isinstance(header_length, int) or not 0 < header_length <= len(body):
        raise invalid(
            f"{HEADER_LENGTH} must be between 1 and the body's length ({len(body)}), got {header_length!r}",
            HEADER_LENGTH,
        )
    view = memoryview(body)
    return view[:header_length], view[header_length:]


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def read_inputs(inputs: Any, tail: memoryview, *, binary_allowed: bool) -> list[Tensor]:
    """The request's ``inputs``, each with its slice of ``tail`` when sent as binary data."""
    if not isinstance(inputs, list) or not inputs:
        raise invalid("the request needs 'inputs', a non-empty list of tensors", "inputs")
    tensors: list[Tensor] = []
    seen: set[str] = set()
    offset = 0
    # The per-input checks run on every request: error messages are only formatted on the error paths.
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            where = f"inputs[{i}]"
            raise invalid(f"{where} must be an object with name, shape, datatype and data", where)
        name = item.get("name")
        if type(name) is not str or not name or name in seen:
            field = f"inputs[{i}].name"
            if isinstance(name, str) and name in seen:
                raise invalid(f"{field}: input '{name}' is given twice", field)
            raise invalid(f"{field} must be a non-empty string", field)
        seen.add(name)
        datatype = item.get("datatype")
        if type(datatype) is not str or datatype not in DATATYPES:
            field = f"inputs[{i}].datatype"
            raise invalid(
                f"{field}: unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}",
                field,
                accepted=list(DATATYPES),
            )
        shape = item.get("shape")
        if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
            field = f"inputs[{i}].shape"
            raise invalid(f"{field} must be a list of non-negative integers", field)
        params = item.get("parameters")
        size = None
        if params is not None:
            if not isinstance(params, dict):
                field = f"inputs[{i}].parameters"
                raise invalid(f"{field} must be an object", field)
            size = params.get("binary_data_size")
        if size is not None:
            field = f"inputs[{i}].parameters.binary_data_size"
            if not binary_allowed:
                raise invalid(f"{field}: binary data needs the {HEADER_LENGTH} header", field)
            if not _is_count(size):
                raise invalid(f"{field} must be a non-negative integer", field)
            if "data" in item:
                raise invalid(f"inputs[{i}]: give data or parameters.binary_data_size, not both", f"inputs[{i}].data")
            if offset + size > len(tail):
                raise invalid(
                    f"{field}: {size} bytes at offset {offset} overrun the {len(tail)} bytes of binary data",
                    field,
                )
            data: Any = tail[offset : offset + size]
            offset += size
        else:
            data = item.get("data")
            if type(data) is not list:
                raise invalid(
                    f"inputs[{i}] needs 'data', a list of values (or parameters.binary_data_size)", f"inputs[{i}].data"
                )
        dims = tuple(shape)
        count = dims[0] if len(dims) == 1 else math.prod(dims)
        tensors.append(Tensor(i, name, datatype, dims, count, data, size is not None))
    if offset != len(tail):
        raise invalid(
            f"{len(tail) - offset} bytes of binary data after the JSON header belong to no input's binary_data_size",
            "body",
        )
    return tensors


# -- a tensor's elements -----------------------------------------------------------------------------------


def column_values(values: np.ndarray | list[Any], kind: ColumnType, t: Tensor) -> Any:
    """Elements of ``t`` as a column of a signature type: strings as pandas' string array, numbers converted."""
    if isinstance(values, list):
        try:
            return string_array(values)
        except TypeError as e:
            raise invalid(f"{t.where}.data: BYTES data must be strings (or null): {e}", f"{t.where}.data") from e
    return to_column(values.reshape(-1), kind)


def extra_column(t: Tensor) -> Any:
    """A column tensor outside the signature, in its datatype's dtype (BYTES: pandas' string dtype)."""
    values = tensor_values(t)
    if isinstance(values, list):
        return column_values(values, "string", t)
    dtype = DATATYPES[t.datatype]
    assert dtype is not None
    return values.reshape(-1).astype(dtype.newbyteorder("="), copy=False)


def tensor_values(t: Tensor) -> np.ndarray | list[Any]:
    """The tensor's elements, flat and row-major: a NumPy array, or a list of str/None for BYTES."""
    if t.datatype == "BYTES":
        return _binary_strings(t) if t.binary else _json_strings(t)
    dtype = DATATYPES[t.datatype]
    assert dtype is not None
    if t.binary:
        if len(t.data) != t.count * dtype.itemsize:
            raise invalid(
                f"{t.where}.shape {list(t.shape)} of {t.datatype} needs {t.count * dtype.itemsize} bytes, "
                f"binary_data_size is {len(t.data)}",
                f"{t.where}.shape",
            )
        if t.datatype == "BOOL":
            return np.frombuffer(t.data, dtype=np.uint8) != 0
        # A native, writable copy: the model may modify its input, and the body must not stay pinned.
        return np.frombuffer(t.data, dtype=dtype).astype(dtype.newbyteorder("="))
    values = _json_numbers(t, dtype)
    if values.size != t.count:
        raise invalid(
            f"{t.where}.shape {list(t.shape)} has {t.count} elements, data has {values.size}", f"{t.where}.shape"
        )
    return values.reshape(-1)


def _json_numbers(t: Tensor, dtype: np.dtype) -> np.ndarray:
    field = f"{t.where}.data"
    try:
        values = np.asarray(t.data)
    except (ValueError, TypeError, OverflowError) as e:
        raise invalid(f"{field} is not a regular row-major list of {t.datatype} values", field) from e
    if values.size == 0:
        return values.astype(dtype.newbyteorder("="))
    kind = values.dtype.kind
    if t.datatype == "BOOL":
        ok = kind == "b"
    elif dtype.kind in "iu":
        ok = kind in "iu"
        if ok and values.dtype != dtype:
            info = np.iinfo(dtype)
            if values.min() < info.min or values.max() > info.max:
                raise invalid(f"{field} has values out of the range of {t.datatype}", field)
    else:
        ok = kind in "iuf"
        if kind == "O":  # nulls among the numbers: NaN, which the signature's nullable flag then judges
            try:
                values, ok = np.asarray(t.data, dtype=np.float64), True
            except (ValueError, TypeError):
                ok = False
    if not ok:
        raise invalid(f"{field} must hold {t.datatype} values, without nulls for integers and booleans", field)
    return values


def _json_strings(t: Tensor) -> list[Any]:
    data = t.data
    if data and isinstance(data[0], list):
        try:
            data = np.asarray(data, dtype=object).ravel().tolist()
        except ValueError as e:
            raise invalid(f"{t.where}.data is not a regular row-major list", f"{t.where}.data") from e
    if len(data) != t.count:
        raise invalid(
            f"{t.where}.shape {list(t.shape)} has {t.count} elements, data has {len(data)}", f"{t.where}.shape"
        )
    return data


def _binary_strings(t: Tensor) -> list[str]:
    raw = bytes(t.data)
    end = len(raw)
    items: list[str] = []
    pos = 0
    for _ in range(t.count):
        if end - pos < 4:
            break
        (length,) = U32.unpack_from(raw, pos)
        pos += 4
        if end - pos < length:
            pos = end + 1
            break
        try:
            items.append(raw[pos : pos + length].decode())
        except UnicodeDecodeError as e:
            raise invalid(f"{t.where}.data: element {len(items)} is not valid UTF-8", f"{t.where}.data") from e
        pos += length
    if len(items) != t.count or pos != end:
        raise invalid(
            f"{t.where}.shape {list(t.shape)} has {t.count} elements, but its {end} bytes of BYTES data "
            "(4-byte little-endian length, then the bytes, per element) do not hold exactly that many",
            f"{t.where}.shape",
        )
    return items
