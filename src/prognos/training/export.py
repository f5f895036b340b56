"""Export a trained network to ONNX (input ``window``, output ``rul``, dynamic batch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export_onnx"]

INPUT_NAME = "window"
OUTPUT_NAME = "rul"


def export_onnx(model: nn.Module, window: int, n_features: int, path: Path) -> None:
    """Write ``model`` as a self-contained ONNX file (weights inline, opset 17)."""
    model.eval()
    example = torch.zeros(2, window, n_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        sink: Any = buf  # the legacy exporter writes to a file object too (typed for paths only)
        torch.onnx.export(
            model, (example,), sink, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=17, dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    Path(path).write_bytes(proto.SerializeToString())


def torch_predict(model: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """``model``'s output on windows ``x`` (n, window, features), ``batch`` windows at a time."""
    model.eval()
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        return torch.cat([model(t[i : i + batch]) for i in range(0, max(len(t), 1), batch)]).numpy()
