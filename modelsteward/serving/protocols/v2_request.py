"""Open Inference Protocol v2 (KServe, Triton, MLServer) requests: an ``/infer`` body to a conformed DataFrame.

A pure function of bytes: the gateway hands over the raw body and the ``Inference-Header-Content-Length``
header; reading the tensors themselves is :mod:`~modelsteward.serving.protocols.v2_tensors`'s part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.domain.records import Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.serving.protocols.frames import TablePlan, assemble_frame, table_plan
from modelsteward.serving.protocols.json_body import load_json
from modelsteward.serving.protocols.v2_tensors import (
    Tensor,
    column_values,
    extra_column,
    read_inputs,
    split_body,
    tensor_values,
)
from modelsteward.serving.protocols.v2_wire import HEADER_LENGTH, invalid


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """A v2 inference request read against a signature.

    ``frame`` is already conformed: columns in signature order and types, nulls checked, so the
    gateway can hand it to the model without running :func:`conform` again. Decoded with
    ``allow_extra=True``, the tensors outside the signature follow as further columns, in request
    order (``frame.columns[len(signature.inputs):]``).
    """

    frame: pd.DataFrame
    id: str | None
    parameters: dict[str, Any]
    binary_outputs: bool
    requested_outputs: list[str] | None


def decode_request(
    body: bytes,
    *,
    header_length: int | None,
    signature: Signature,
    owner: str = "the model",
    allow_extra: bool = False,
) -> DecodedRequest:
    """Read a v2 ``/infer`` body (JSON, or JSON then binary tensors) into a conformed DataFrame.

    ``header_length`` is the ``Inference-Header-Content-Length`` header, when the client sent one.
    Inputs are either one tensor per signature column (shape ``[n]`` or ``[n, 1]``, as MLServer's
    pandas codec sends them) or a single ``[n, k]`` tensor whose columns follow the signature's input
    order (as KServe's sklearn server expects). Raises :class:`InvalidArgument` or
    :class:`SchemaMismatch` with ``details["field"]`` naming the offending part of the request.

    With ``allow_extra=True``, column tensors the signature does not name are kept after the
    signature's columns, in request order, each in its datatype's dtype (``INT32`` -> int32, ``FP64``
    -> float64, ``BOOL`` -> bool, ``BYTES`` -> pandas' string dtype) instead of being refused: a sticky
    key such as ``customer_id``, or columns only a challenger model reads. The signature's columns are
    checked as always; a single ``[n, k]`` tensor takes no extras (``k`` is still the signature's width).

    >>> decode_request(b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}',
    ...                header_length=None, signature=sig, owner="credit/3").frame  # doctest: +SKIP
    """
    header, tail = split_body(body, header_length)
    try:
        doc = load_json(header)
    except InvalidArgument as e:
        if header_length is None and b'"binary_data_size"' in body:
            e.message += f" (binary tensor data after the JSON needs the {HEADER_LENGTH} header)"
            e.args = (e.message,)
        raise
    if not isinstance(doc, dict):
        raise invalid("the body must be a JSON object", "body")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise invalid("id must be a string", "id")
    parameters = doc.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        raise invalid("parameters must be an object", "parameters")
    tensors = read_inputs(doc.get("inputs"), tail, binary_allowed=header_length is not None)
    requested, binary_outputs = _read_outputs(doc.get("outputs"), parameters, signature)
    frame = _frame_of(tensors, table_plan(signature), signature, owner, allow_extra)
    return DecodedRequest(
        frame=frame,
        id=request_id,
        parameters=parameters,
        binary_outputs=binary_outputs,
        requested_outputs=requested,
    )


def _read_outputs(outputs: Any, parameters: dict[str, Any], signature: Signature) -> tuple[list[str] | None, bool]:
    default = parameters.get("binary_data_output") is True
    if outputs is None or outputs == []:
        return None, default
    if not isinstance(outputs, list):
        raise invalid("outputs must be a list of {name, parameters}", "outputs")
    known = set(signature.output_names)
    names: list[str] = []
    binary = False
    for j, item in enumerate(outputs):
        where = f"outputs[{j}]"
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise invalid(f"{where}.name must be a non-empty string", f"{where}.name")
        if known and name not in known:
            raise invalid(
                f"{where}.name: the model has no output '{name}' (it has {', '.join(signature.output_names)})",
                f"{where}.name",
            )
        params = item.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid(f"{where}.parameters must be an object", f"{where}.parameters")
        flag = params.get("binary_data", default) if params else default
        binary = binary or flag is True
        names.append(name)
    return names, binary


def _unknown_column(tensor: Tensor, plan: TablePlan) -> SchemaMismatch:
    return SchemaMismatch(
        f"{tensor.where}.name: '{tensor.name}' is not an input column of the signature "
        f"({', '.join(plan.names)}); name one tensor per column, or send one [n, {len(plan.names)}] tensor",
        details={
            "field": f"{tensor.where}.name",
            "column": tensor.name,
            "problems": [{"column": tensor.name, "problem": "not in the signature"}],
        },
    )


def _is_wide(t: Tensor) -> bool:
    return len(t.shape) == 2 and t.shape[1] != 1


def _frame_of(
    tensors: list[Tensor], plan: TablePlan, signature: Signature, owner: str, allow_extra: bool
) -> pd.DataFrame:
    if any(t.name in plan.position for t in tensors):
        return _columns_frame(tensors, plan, signature, owner, allow_extra)
    if len(tensors) == 1:
        t = tensors[0]
        if not allow_extra or len(t.shape) == 2 or len(plan.names) == 1:
            return _matrix_frame(t, plan, signature, owner)
    if any(_is_wide(t) for t in tensors):
        if allow_extra and sum(map(_is_wide, tensors)) == 1:
            raise invalid(
                "an [n, k] tensor takes no extra tensors beside it; to send columns outside the signature, "
                "send one tensor per column",
                "inputs",
            )
        raise invalid("send one [n, k] tensor, or one tensor per column, not several 2-D tensors", "inputs")
    if allow_extra:  # only extras: every signature column is missing
        return _columns_frame(tensors, plan, signature, owner, allow_extra)
    raise _unknown_column(tensors[0], plan)


def _columns_frame(
    tensors: list[Tensor], plan: TablePlan, signature: Signature, owner: str, allow_extra: bool
) -> pd.DataFrame:
    position = plan.position
    n_extra = 0
    for t in tensors:
        if t.name not in position:
            if _is_wide(t):
                raise invalid(
                    f"{t.where}: a [{t.shape[0]}, {t.shape[1]}] tensor among column tensors; send either one "
                    "tensor per column or a single [n, k] tensor, not both",
                    t.where,
                )
            if not allow_extra:
                raise _unknown_column(t, plan)
            n_extra += 1
    if len(tensors) - n_extra != len(plan.names):  # names are known and unique, so some column has no tensor
        given = {t.name for t in tensors}
        missing = [name for name in plan.names if name not in given]
        raise SchemaMismatch(
            f"input does not match the signature of {owner}: no tensor for column(s) {', '.join(missing)}",
            details={
                "field": "inputs",
                "column": missing[0],
                "problems": [{"column": name, "problem": "missing"} for name in missing],
            },
        )
    arrays: list[Any] = [None] * len(plan.names)
    extra_names: list[str] = []
    extra_arrays: list[Any] = []
    first = tensors[0]
    n_rows = first.shape[0] if first.shape else -1
    for t in tensors:
        shape = t.shape
        if len(shape) != 1 and (len(shape) != 2 or shape[1] != 1):
            raise invalid(
                f"{t.where}.shape: a column tensor has shape [n] or [n, 1], got {list(shape)}", f"{t.where}.shape"
            )
        if shape[0] != n_rows:
            raise invalid(
                f"{t.where}.shape: {shape[0]} rows where {first.where} ('{first.name}') has {n_rows}",
                f"{t.where}.shape",
            )
        pos = position.get(t.name)
        if pos is None:
            extra_names.append(t.name)
            extra_arrays.append(extra_column(t))
        else:
            arrays[pos] = column_values(tensor_values(t), plan.types[pos], t)

    def field_of(column: str | None) -> str:
        return next((t.where for t in tensors if t.name == column), "inputs")

    return assemble_frame(
        arrays,
        plan,
        n_rows,
        signature=signature,
        owner=owner,
        field_of=field_of,
        extra_names=tuple(extra_names),
        extra_arrays=extra_arrays,
    )


def _matrix_frame(t: Tensor, plan: TablePlan, signature: Signature, owner: str) -> pd.DataFrame:
    width = len(plan.names)
    if len(t.shape) == 2:
        n_rows, got = t.shape
    elif len(t.shape) == 1 and width == 1:
        n_rows, got = t.shape[0], 1
    else:
        raise _unknown_column(t, plan)
    if got != width:
        raise SchemaMismatch(
            f"{t.where}.shape: a [{n_rows}, {got}] tensor for a signature of {width} input columns "
            f"({', '.join(plan.names)}); its columns must follow that order",
            details={"field": f"{t.where}.shape", "expected": width, "got": got},
        )
    values = tensor_values(t)

    def field_of(column: str | None) -> str:
        return t.where

    if isinstance(values, np.ndarray):
        matrix = values.reshape(n_rows, width)
        if all(kind == "number" for kind in plan.types) and matrix.dtype.kind in "iuf":
            matrix = matrix.astype(np.float64, copy=False)
            if all(plan.nullable) or not np.isnan(matrix).any():
                # One 2-D block, no copy: the cheapest frame pandas can build, and what sklearn wants.
                return pd.DataFrame(matrix, columns=plan.columns, index=pd.RangeIndex(n_rows), copy=False)
        arrays = [column_values(matrix[:, j], plan.types[j], t) for j in range(width)]
    else:
        arrays = [column_values(values[j::width], plan.types[j], t) for j in range(width)]
    return assemble_frame(arrays, plan, n_rows, signature=signature, owner=owner, field_of=field_of)
