"""Minimal TFLite flatbuffer reader: dequantised constant tensors and the op list.

Only what converting a quantised TFLite model to PyTorch needs; it never runs the model (the
pure-python ``tflite`` schema package parses the file, no TensorFlow required).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_NP_TYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT64: np.int64,
}


@dataclass(frozen=True)
class TfliteOp:
    """One operator: its builtin name (e.g. ``CONV_2D``) and tensor indices (-1 = absent)."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TfliteModel:
    """Read-only view of the first subgraph of a ``.tflite`` file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._buf = self.path.read_bytes()
        self._model = tflite.Model.GetRootAsModel(self._buf, 0)
        self._graph = self._model.Subgraphs(0)
        graph = self._graph
        self.tensor_names = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength())]
        self.ops = [self._op(i) for i in range(graph.OperatorsLength())]

    def _op(self, i: int) -> TfliteOp:
        op = self._graph.Operators(i)
        code = self._model.OperatorCodes(op.OpcodeIndex())
        # Newer files keep the code in BuiltinCode, old ones in the deprecated int8 field.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        return TfliteOp(
            i,
            _OP_NAMES.get(builtin, str(builtin)),
            tuple(int(t) for t in op.InputsAsNumpy()),
            tuple(int(t) for t in op.OutputsAsNumpy()),
        )

    def index(self, name: str) -> int:
        """Tensor index by full name or by its first ';'-separated part (converter names merge
        several TF names)."""
        for i, full in enumerate(self.tensor_names):
            if full == name or full.split(";")[0] == name:
                return i
        raise KeyError(f"{self.path.name}: no tensor named {name!r}")

    def quantization(self, ref: int | str) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantised tensor; (1.0, 0) if unquantised."""
        q = self._graph.Tensors(self._idx(ref)).Quantization()
        if q is None or q.ScaleLength() == 0:
            return 1.0, 0
        if q.ScaleLength() != 1:
            raise ValueError(f"{self.path.name}: per-channel quantisation is not supported")
        return float(q.Scale(0)), int(q.ZeroPoint(0))

    def raw(self, ref: int | str) -> np.ndarray:
        """The stored constant as its own integer/float dtype and shape."""
        t = self._graph.Tensors(self._idx(ref))
        data = self._model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            raise ValueError(f"{self.path.name}: tensor {t.Name().decode()!r} is not a constant")
        return np.frombuffer(data.tobytes(), dtype=_NP_TYPES[t.Type()]).reshape(t.ShapeAsNumpy())

    def tensor(self, ref: int | str) -> np.ndarray:
        """Dequantised float32 constant: (q − zero_point) · scale."""
        scale, zero = self.quantization(ref)
        q = self.raw(ref)
        if q.dtype == np.float32:
            return q.copy()
        return ((q.astype(np.float64) - zero) * scale).astype(np.float32)

    def _idx(self, ref: int | str) -> int:
        return ref if isinstance(ref, int) else self.index(ref)
