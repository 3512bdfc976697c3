"""The ``onnx`` kind: a serialized ONNX graph, run with onnxruntime on the CPU."""

from __future__ import annotations

import re
import weakref
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.errors import InvalidArgument, InvalidArtifact, require
from modelsteward.kinds.base import SavedModel
from modelsteward.stats.schema import infer_columns

# ONNX element type (as onnxruntime spells it in "tensor(<type>)") -> portable column type and feed dtype.
_ELEMENTS: dict[str, tuple[ColumnType, Any]] = {
    "float": ("number", np.float32),
    "double": ("number", np.float64),
    "float16": ("number", np.float16),
    "int8": ("integer", np.int8),
    "int16": ("integer", np.int16),
    "int32": ("integer", np.int32),
    "int64": ("integer", np.int64),
    "uint8": ("integer", np.uint8),
    "uint16": ("integer", np.uint16),
    "uint32": ("integer", np.uint32),
    "uint64": ("integer", np.uint64),
    "string": ("string", object),
    "bool": ("boolean", np.bool_),
}
_TENSOR = re.compile(r"^tensor\((\w+)\)$")
_SEQ_OF_MAPS = re.compile(r"^seq\(map\((\w+),\s*tensor\((\w+)\)\)\)$")

# ZipMap keys of the sessions this kind loaded. A session does not expose its graph, and the keys are
# not part of the output type, so they come from the saved metadata and are remembered here.
_MAP_KEYS: weakref.WeakKeyDictionary[Any, dict[str, list[Any]]] = weakref.WeakKeyDictionary()


class OnnxKind:
    """Holds an ONNX model: an ``onnx.ModelProto``, a path to a ``.onnx`` file, or its serialized bytes.

    Two input layouts are understood:

    * one 2-D float (or int) tensor ``[N, k]``: its k columns are the input example's columns, in order,
      so the example is required;
    * one input per column, shaped ``[N]`` or ``[N, 1]`` and named like the column (as skl2onnx
      produces with one ``initial_types`` entry per column), typed from the ONNX element types.

    Outputs: a ``[N]`` or ``[N, 1]`` output is one column named like it; ``[N, k]`` gives
    ``<name>_0`` .. ``<name>_{k-1}``; a sequence of maps (skl2onnx's ZipMap) gives ``<name>_<key>``.
    """

    name: ClassVar[str] = "onnx"
    packages: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime", "numpy")

    def detect(self, obj: Any) -> bool:
        try:
            if isinstance(obj, (bytes, bytearray)):
                return _parse_model(bytes(obj)) is not None
            if isinstance(obj, (str, PathLike)):
                path = Path(obj)
                return path.suffix.lower() == ".onnx" and path.is_file()
            cls = type(obj)
            return cls.__name__ == "ModelProto" and cls.__module__.startswith("onnx")
        except Exception:  # noqa: BLE001 - detect answers a question, it never fails
            return False

    def save(self, obj: Any) -> SavedModel:
        data, model = self._serialize(obj)
        session = _session(data, kind=self.name)
        keys = _zipmap_keys(model)
        metadata = {
            "ir_version": int(model.ir_version),
            "opsets": {op.domain or "ai.onnx": int(op.version) for op in model.opset_import},
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
            "inputs": [_describe(arg) for arg in session.get_inputs()],
            "outputs": [
                {**_describe(arg), **({"keys": keys[arg.name]} if arg.name in keys else {})}
                for arg in session.get_outputs()
            ],
        }
        return SavedModel(data=data, format="onnx", metadata=metadata)

    def load(self, saved: SavedModel) -> Any:
        if saved.format != "onnx":
            raise InvalidArtifact(f"the onnx kind cannot read format {saved.format!r}", details={"kind": self.name})
        session = _session(saved.data, kind=self.name)
        outputs = saved.metadata.get("outputs")
        if isinstance(outputs, list):
            keys = {o["name"]: list(o["keys"]) for o in outputs if isinstance(o, dict) and o.get("keys")}
        else:  # metadata from elsewhere: read the keys from the graph itself
            model = _parse_model(saved.data)
            keys = _zipmap_keys(model) if model is not None else {}
        if keys:
            _MAP_KEYS[session] = keys
        return session

    def signature(self, native: Any, example: pd.DataFrame | None) -> Signature:
        inputs = native.get_inputs()
        tensor = _tensor_input(inputs, example)
        if tensor is not None:
            columns = _tensor_columns(tensor, example)
        else:
            columns = [_column_spec(arg, example) for arg in inputs]
            if example is not None:
                missing = [c.name for c in columns if c.name not in set(map(str, example.columns))]
                if missing:
                    raise InvalidArgument(
                        f"the ONNX model takes one input per column, but the input example lacks {missing}",
                        details={"field": "input_example", "missing": missing},
                    )
        return Signature(inputs=columns, outputs=_output_specs(native))

    def predict(self, native: Any, frame: pd.DataFrame) -> pd.DataFrame:
        inputs = native.get_inputs()
        try:
            feeds = _feeds(inputs, frame)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"cannot build the ONNX model's inputs: {e}", details={"kind": self.name}) from e
        try:
            results = native.run(None, feeds)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
            raise InvalidArgument(f"the ONNX model failed on this input: {e}", details={"kind": self.name}) from e
        columns: dict[str, np.ndarray] = {}
        keys = _MAP_KEYS.get(native, {})
        for arg, value in zip(native.get_outputs(), results, strict=True):
            columns.update(_output_columns(arg.name, value, keys.get(arg.name), len(frame)))
        bad = {name: len(values) for name, values in columns.items() if len(values) != len(frame)}
        if bad:
            raise InvalidArgument(
                f"the ONNX model returned a number of rows other than {len(frame)}: {bad}",
                details={"rows": bad},
            )
        return pd.DataFrame(columns, index=frame.index)

    def _serialize(self, obj: Any) -> tuple[bytes, Any]:
        """The model's bytes and the parsed ``ModelProto``, external tensor data included."""
        onnx = require("onnx", "onnx")
        if isinstance(obj, (bytes, bytearray)):
            data = bytes(obj)
        elif isinstance(obj, (str, PathLike)):
            path = Path(obj)
            if not path.is_file():
                raise InvalidArtifact(f"no ONNX file at {str(path)!r}", details={"kind": self.name})
            data = path.read_bytes()
            model = _parse_model(data)
            if model is not None and _uses_external_data(model, onnx):
                try:  # weights stored next to the file: bring them into the one artifact
                    data = onnx.load(str(path), load_external_data=True).SerializeToString()
                except Exception as e:  # noqa: BLE001 - onnx fails with OSError, ValueError, DecodeError...
                    raise InvalidArtifact(
                        f"cannot read the external data of {str(path)!r}: {e}", details={"kind": self.name}
                    ) from e
        elif self.detect(obj):
            try:
                data = obj.SerializeToString()
            except Exception as e:  # noqa: BLE001 - protobuf refuses models over 2 GB with ValueError
                raise InvalidArtifact(f"cannot serialize the ONNX model: {e}", details={"kind": self.name}) from e
        else:
            raise InvalidArtifact(
                f"a {type(obj).__name__} is not an ONNX model: give an onnx.ModelProto, a .onnx path or its bytes",
                details={"kind": self.name},
            )
        model = _parse_model(data)
        if model is None:
            raise InvalidArtifact("the bytes are not a serialized ONNX model", details={"kind": self.name})
        return data, model


def _parse_model(data: bytes) -> Any | None:
    """The ``ModelProto`` in ``data``, or ``None`` if the bytes are not a model with a graph."""
    # A serialized model starts with field 1 (ir_version, a varint): tag byte 0x08. Checking it first
    # keeps ``detect`` from importing onnx for every bytes object it is shown.
    if len(data) < 8 or data[0] != 0x08:
        return None
    onnx = require("onnx", "onnx")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError, or RuntimeError from some backends
        return None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        return None
    return model


def _uses_external_data(model: Any, onnx: Any) -> bool:
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def _zipmap_keys(model: Any) -> dict[str, list[Any]]:
    """Graph output name -> the class labels of the ZipMap node that produces it."""
    keys: dict[str, list[Any]] = {}
    for node in model.graph.node:
        if node.op_type != "ZipMap":
            continue
        for attr in node.attribute:
            if attr.name == "classlabels_int64s":
                keys[node.output[0]] = [int(v) for v in attr.ints]
            elif attr.name == "classlabels_strings":
                keys[node.output[0]] = [v.decode() if isinstance(v, bytes) else str(v) for v in attr.strings]
    return keys


def _session(data: bytes, *, kind: str) -> Any:
    ort = require("onnxruntime", "onnx")
    try:
        return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
        raise InvalidArtifact(f"onnxruntime cannot load the model: {e}", details={"kind": kind}) from e


def _describe(arg: Any) -> dict[str, Any]:
    shape = arg.shape if isinstance(arg.shape, list) else []
    return {
        "name": arg.name,
        "type": arg.type,
        "shape": [d if isinstance(d, (int, str)) else None for d in shape],
    }


def _shape(arg: Any) -> list[Any]:
    return list(arg.shape) if isinstance(arg.shape, list) else []


def _element(arg: Any) -> tuple[ColumnType, Any]:
    match = _TENSOR.match(arg.type)
    if match is None or match.group(1) not in _ELEMENTS:
        raise InvalidArgument(
            f"the ONNX input {arg.name!r} has type {arg.type}; only tensors of numbers, strings or booleans "
            "can be fed from tabular data",
            details={"input": arg.name, "type": arg.type},
        )
    return _ELEMENTS[match.group(1)]


def _tensor_input(inputs: list[Any], example: pd.DataFrame | None) -> Any | None:
    """The single ``[N, k]`` input whose columns are the example's, or ``None`` for one input per column."""
    if len(inputs) != 1 or len(_shape(inputs[0])) != 2:
        return None
    arg = inputs[0]
    if _shape(arg)[1] == 1 and (example is None or arg.name in set(map(str, example.columns))):
        return None  # a lone [N, 1] input named like a column is the per-column layout
    return arg


def _tensor_columns(arg: Any, example: pd.DataFrame | None) -> list[ColumnSpec]:
    width = _shape(arg)[1]
    if example is None:
        raise InvalidArgument(
            f"the ONNX model takes one [N, {width if isinstance(width, int) else 'k'}] tensor {arg.name!r}: "
            "pass input_example=... whose columns, in order, are the tensor's columns",
            details={"field": "input_example"},
        )
    if isinstance(width, int) and width != example.shape[1]:
        raise InvalidArgument(
            f"the ONNX input {arg.name!r} has {width} columns but the input example has {example.shape[1]}; "
            "give an example with exactly the model's columns, in order",
            details={"field": "input_example", "expected": width, "got": int(example.shape[1])},
        )
    kind, _ = _element(arg)
    specs = []
    for column in infer_columns(example):
        if not _compatible(column.type, kind):
            raise InvalidArgument(
                f"the input example's column {column.name!r} is {column.type}, but the ONNX tensor "
                f"{arg.name!r} holds {kind} values",
                details={"field": "input_example", "column": column.name},
            )
        specs.append(ColumnSpec(name=column.name, type=kind, nullable=column.nullable and kind == "number"))
    return specs


def _compatible(given: ColumnType, wanted: ColumnType) -> bool:
    if wanted in ("number", "integer"):
        return given in ("number", "integer")
    return given == wanted


def _column_spec(arg: Any, example: pd.DataFrame | None) -> ColumnSpec:
    shape = _shape(arg)
    if not (len(shape) == 1 or (len(shape) == 2 and not (isinstance(shape[1], int) and shape[1] != 1))):
        raise InvalidArgument(
            f"the ONNX input {arg.name!r} has shape {shape}; Model Steward feeds tabular data, either as one "
            "[N, k] tensor or as one [N] or [N, 1] input per column",
            details={"input": arg.name, "shape": [d if isinstance(d, (int, str)) else None for d in shape]},
        )
    kind, _ = _element(arg)
    # NaN is a value an ONNX float input can take (imputers use it); other types cannot hold a null.
    nullable = (
        kind == "number"
        and example is not None
        and arg.name in set(map(str, example.columns))
        and bool(example[arg.name].isna().any())
    )
    return ColumnSpec(name=arg.name, type=kind, nullable=nullable)


def _output_specs(session: Any) -> list[ColumnSpec]:
    """The output columns, or ``[]`` when some output's width is only known by running the model."""
    keys = _MAP_KEYS.get(session, {})
    specs: list[ColumnSpec] = []
    for arg in session.get_outputs():
        tensor = _TENSOR.match(arg.type)
        seq = _SEQ_OF_MAPS.match(arg.type)
        if tensor and tensor.group(1) in _ELEMENTS:
            kind = _ELEMENTS[tensor.group(1)][0]
            shape = _shape(arg)
            if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
                specs.append(ColumnSpec(name=arg.name, type=kind))
            elif len(shape) == 2 and isinstance(shape[1], int):
                specs.extend(ColumnSpec(name=f"{arg.name}_{j}", type=kind) for j in range(shape[1]))
            else:
                return []
        elif seq and seq.group(2) in _ELEMENTS and arg.name in keys:
            kind = _ELEMENTS[seq.group(2)][0]
            specs.extend(ColumnSpec(name=f"{arg.name}_{key}", type=kind) for key in keys[arg.name])
        else:
            return []
    return specs


def _feeds(inputs: list[Any], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if len(inputs) == 1 and len(_shape(inputs[0])) == 2:
        # One [N, k] tensor: the frame's columns, already in signature order, side by side.
        arg = inputs[0]
        _, dtype = _element(arg)
        return {arg.name: frame.to_numpy(dtype=dtype).reshape(len(frame), -1)}
    feeds = {}
    for i, arg in enumerate(inputs):
        _, dtype = _element(arg)
        series = frame[arg.name] if arg.name in frame.columns else frame.iloc[:, i]
        values = series.to_numpy(dtype=dtype)
        feeds[arg.name] = values.reshape(-1, 1) if len(_shape(arg)) == 2 else values
    return feeds


def _output_columns(name: str, value: Any, keys: list[Any] | None, rows: int) -> dict[str, np.ndarray]:
    if isinstance(value, list):  # a sequence of maps, one {label: probability} per row (ZipMap)
        order = keys if keys is not None else (list(value[0]) if value else [])
        try:  # a nested list is several times faster than pandas for the few rows of a request
            table = np.array([[row[key] for key in order] for row in value], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgument(
                f"the ONNX output {name!r} is not a sequence of {{label: number}} maps: {e}",
                details={"output": name},
            ) from e
        table = table.reshape(len(value), len(order))
        return {f"{name}_{key}": table[:, j] for j, key in enumerate(order)}
    array = np.asarray(value)
    if array.ndim == 1:
        return {name: array}
    if array.ndim == 2 and array.shape[1] == 1:
        return {name: array[:, 0]}
    if array.ndim == 2:
        return {f"{name}_{j}": array[:, j] for j in range(array.shape[1])}
    raise InvalidArgument(
        f"the ONNX output {name!r} has shape {list(array.shape)}; expected [N], [N, k] or a sequence of maps",
        details={"output": name, "rows": rows},
    )
