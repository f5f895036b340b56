"""Export a trained network to ONNX (input ``window``, output ``rul``, dynamic batch), and its input
gradient (``explain.onnx``: integrated-gradients explanations served without torch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from prognos.errors import TrainingError

__all__ = ["GRADIENT_STEPS", "INPUT_NAME", "OUTPUT_NAME", "export_gradient", "export_onnx", "gradient_graph",
           "network_from_onnx", "torch_gradient"]

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


GRADIENT_OUTPUT = "gradient"
#: Integrated-gradients path points in the gradient graph (its fixed batch). Chosen on FD001 (docs/model-card.md,
#: "Explanations"): 2 midpoints keep an explanation within 5x the model call; 4 would halve the completeness
#: residual again at about 7x.
GRADIENT_STEPS = 2
#: Largest |gradient graph - torch autograd| accepted, relative to the largest |gradient|.
GRADIENT_TOLERANCE = 1e-4


def export_gradient(model: nn.Module, window: int, n_features: int, steps: int, path: Path) -> None:
    """Write the input gradient of ``model`` as ONNX: input ``window`` (``steps``, window, n_features),
    outputs ``rul`` (steps,) and ``gradient`` (steps, window, n_features) = d rul_i / d window_i, in
    cycles per scaled unit; weights inline, opset 18. The batch is fixed at ``steps`` (the points of
    one integrated-gradients path): tracing the backward pass specialises the batch size.

    torch's ONNX exporters cannot export a backward pass as is: the forward+backward is traced to
    core ATen ops (``make_fx``), each ``convolution_backward`` (only its input gradient is used: the
    weights are constants) is rewritten as the transposed convolution it is, and the graph is then
    exported with the dynamo exporter (the ``onnxscript`` package). Raises on networks whose backward
    has another op without an ONNX form (the caller falls back to occlusion)."""
    import operator

    from torch._decomp import core_aten_decompositions
    from torch.fx.experimental.proxy_tensor import make_fx

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    def value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def total(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = model(z)
            return y.sum(), y

        g, y = torch.func.grad(total, has_aux=True)(x)
        return y, g

    example = torch.zeros(steps, window, n_features)
    with warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=False):
        # LSTMs: traced as plain ops, not a fused mkldnn kernel (the flag warns about Intel GPUs).
        warnings.simplefilter("ignore")
        gm = make_fx(value_and_grad, decomposition_table=dict(core_aten_decompositions()))(example)
    backward = torch.ops.aten.convolution_backward.default
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target is not backward:
            continue
        grad_out, _inp, weight, _bias, stride, padding, dilation, transposed, _out_pad, groups, mask = node.args
        if transposed or not mask[0]:
            raise NotImplementedError("convolution_backward other than a plain convolution's input gradient")
        with gm.graph.inserting_before(node):
            # d conv(x, w) / dx applied to grad_out: the transposed convolution with the same weight (a
            # plain convolution with the kernel flipped measured no faster in ONNX Runtime).
            new = gm.graph.call_function(torch.ops.aten.convolution.default, (
                grad_out, weight, None, stride, padding, dilation, True, [0] * len(stride), groups))
        for user in list(node.users):
            if user.target is not operator.getitem or (user.args[1] != 0 and user.users):
                raise NotImplementedError("convolution_backward's weight gradient is used")
            if user.args[1] == 0:
                user.replace_all_uses_with(new)
            gm.graph.erase_node(user)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()

    class _Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.gm(window)  # type: ignore[no-any-return]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Graph(), (example,), None, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME, GRADIENT_OUTPUT], opset_version=18, dynamo=True,
                                    verbose=False)
    if program is None:
        raise RuntimeError("the dynamo ONNX exporter returned no program")
    proto = program.model_proto
    onnx.checker.check_model(proto)
    Path(path).write_bytes(proto.SerializeToString())


def torch_gradient(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s output on windows ``x`` and its input gradient, by torch autograd."""
    model.eval()
    z = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).requires_grad_(True)
    y = model(z)
    (g,) = torch.autograd.grad(y.sum(), z)
    return y.detach().numpy(), g.numpy()


def network_from_onnx(model_path: Path, name: str, params: dict[str, Any], n_features: int, window: int,
                      cap: float, members: int = 1) -> nn.Module:
    """The served network of a bundle rebuilt in torch from ``model.onnx``'s weights (for bundles
    written without a gradient graph): registered network ``name`` with ``params``, ``members`` of
    them averaged as :class:`~prognos.training.networks.Ensemble`. The legacy exporter keeps every
    parameter as an initializer under its state-dict name; a missing name or shape raises ValueError."""
    from onnx import numpy_helper

    from prognos.training.networks import Ensemble, build_network

    net = Ensemble([build_network(name, n_features, window, **params) for _ in range(members)], cap).eval()
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(model_path)).graph.initializer}
    state = {}
    for key, value in net.state_dict().items():
        if key not in weights or weights[key].shape != tuple(value.shape):
            raise ValueError(f"{model_path}: no initializer {key!r} of shape {tuple(value.shape)}")
        state[key] = torch.from_numpy(weights[key].copy())
    net.load_state_dict(state)
    return net


def gradient_graph(model: nn.Module, window: int, n_features: int, sample: np.ndarray, path: Path,
                   steps: int = GRADIENT_STEPS) -> dict[str, Any]:
    """Write ``model``'s gradient graph (:func:`export_gradient`) to ``path`` and check it against torch
    autograd on ``sample`` windows (the conformance check, as for ``model.onnx``). Returns what the
    manifest records: the steps and the largest differences, or the reason there is no graph (then
    ``path`` is not written; recurrent networks: tracing unrolls them, 0.5-2 min a member)."""
    from prognos.serving.runtime import GradientRuntime

    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return {"built": False, "reason": "recurrent layers (explained by occlusion)"}
    export_gradient(model, window, n_features, steps, path)
    runtime = GradientRuntime(path)
    rows = np.resize(sample, (max(len(sample) // steps, 1) * steps, *sample.shape[1:])).astype(np.float32)
    rul_gap = grad_gap = scale = 0.0
    for i in range(0, len(rows), steps):
        chunk = rows[i:i + steps]
        rul, grad = runtime.gradient(chunk)
        t_rul, t_grad = torch_gradient(model, chunk)
        rul_gap = max(rul_gap, float(np.abs(rul - t_rul).max()))
        grad_gap = max(grad_gap, float(np.abs(grad - t_grad).max()))
        scale = max(scale, float(np.abs(t_grad).max()))
    if rul_gap > 1e-3 or grad_gap > GRADIENT_TOLERANCE * max(scale, 1.0):
        raise TrainingError(f"gradient graph disagrees with torch autograd: RUL by {rul_gap:.2g} cycles, gradient by "
                            f"{grad_gap:.2g} (largest |gradient| {scale:.2g})")
    return {"built": True, "steps": steps, "max_abs_diff_rul": rul_gap, "max_abs_diff_gradient": grad_gap}
