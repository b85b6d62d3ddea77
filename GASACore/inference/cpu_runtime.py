"""Fast CPU forward passes for 3D segmentation networks: oneDNN convolutions, OpenVINO, the thread rule.

Why: on the CPU, PyTorch runs a batch-1 float32 ``Conv3d`` through oneDNN only when
``C_in * D * H > 20480`` (a rule made for 2D images; it ignores the last axis). Below that it uses its
im2col path (``slow_conv3d_forward``), 2-12x slower per layer: every layer of a small network's window and
the deep stages of any network. :class:`OneDNNConvolutions` sends every CPU float32 3D (transposed)
convolution to oneDNN instead, with channels-last activations (no layout reorders around each convolution)
and an exact channels-last instance norm; outputs equal PyTorch's to float32 rounding. Measured (1 thread,
CPU time per window, ``bench/cpu_conv_bench.py``): the demo model 0.44 -> 0.078 s (5.6x), nnU-Net 16-256 at
64^3 0.80 -> 0.62 s, GASA-UNet 16-256 at 128x112x128 8.5 -> 6.1 s.

The ``onednn`` backend runs nnU-Net's U-Nets through :func:`~GASACore.inference.lean_unet.lean_unet_forward`
(same modules, skips and concatenations released once used, norms in place: a 48x128x128 window of an
8-channel network holds ~115 MB instead of ~310 MB, ``bench/window_forward_bench.py``).

The ``onednn-bf16`` backend runs the same convolutions in bfloat16 (``OneDNNConvolutions(dtype=torch.bfloat16)``):
on CPUs with AMX bf16 units oneDNN multiplies bfloat16 tiles natively, 1.6x faster per demo window than float32
(0.252 -> 0.153 s, 1 thread) and 2.4x on nnU-Net 16-256 at 64^3; weights are converted once per prepared fold,
instance-norm statistics, the segmentation head and the logits stay float32 (logits within ~0.4 of float32's,
whole-CT argmax agreement >= 99.98% with the demo model). ``auto`` picks it only on such CPUs
(:mod:`GASACore.inference.cpu_capability`).

:func:`prepare_cpu_forward` turns a network into a :class:`CpuForward` for one backend and falls back to
plain PyTorch (logged) when the backend is unavailable or fails, when preparing or on any later call
(``onednn-bf16`` first to float32 ``onednn``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from GASACore.inference.cpu_capability import CpuCapability, auto_cpu_backend, detect_cpu_capability
from GASACore.inference.instance_norm import instance_norm_channels_last, instance_norm_channels_last_
from GASACore.inference.lean_unet import lean_unet_forward
from GASACore.options import CpuBackend, check_cpu_backend

__all__ = [
    "CpuBackend",
    "CpuForward",
    "ForwardRecord",
    "LowPrecisionWeights",
    "OneDNNConvolutions",
    "instance_norm_channels_last",
    "instance_norm_channels_last_",
    "pointwise_conv_planar",
    "prepare_cpu_forward",
    "resolve_cpu_backend",
]

logger = logging.getLogger(__name__)

CHANNELS_LAST = torch.channels_last_3d

_CONV_ARGS = (("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1),
              ("groups", 1))  # fmt: skip
_CONV_T_ARGS = (("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0),
                ("output_padding", 0), ("groups", 1), ("dilation", 1))  # fmt: skip


def _triple(value: Any) -> list[int]:
    return [int(value)] * 3 if isinstance(value, int) else [int(v) for v in value]


def _bind(spec: Sequence[tuple[str, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Positional values of a functional call, defaults filled in: ``_bind(_CONV_ARGS, (x, w), {})[3] == 1``."""
    return list(args) + [kwargs.get(name, default) for name, default in spec[len(args) :]]


def _routable(x: Any, weight: Any, dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN can take this convolution: dense 5D CPU tensors, float32 weights, input float32 or the
    mode's ``dtype``, and no autograd."""
    tensors = isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor)
    return (
        tensors
        and x.dim() == 5
        and x.device.type == weight.device.type == "cpu"
        and x.dtype in (torch.float32, dtype)
        and weight.dtype == torch.float32
        and x.layout == weight.layout == torch.strided
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    )


_NORM_ARGS = (("input", None), ("running_mean", None), ("running_var", None), ("weight", None), ("bias", None),
              ("use_input_stats", True), ("momentum", 0.1), ("eps", 1e-5))  # fmt: skip


def _channels_last(x: torch.Tensor) -> bool:
    """A 5D tensor laid out channels-last (and not also plainly contiguous, as 1-channel tensors are)."""
    return x.dim() == 5 and x.is_contiguous(memory_format=CHANNELS_LAST) and not x.is_contiguous()


def _pointwise(weight: torch.Tensor, stride: Any, padding: Any, dilation: Any, groups: Any) -> bool:
    """A 1x1x1 convolution with stride 1, no padding and no groups: a matrix product over the channels."""
    plain = (_triple(stride), _triple(padding), _triple(dilation)) == ([1] * 3, [0] * 3, [1] * 3)
    return weight.dim() == 5 and tuple(weight.shape[2:]) == (1, 1, 1) and plain and int(groups) == 1


def pointwise_conv_planar(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1x1 ``conv3d`` as one matrix product per batch element, written in the plain (contiguous) layout.

    For a network's final segmentation layer on channels-last features: the logits come out in the layout
    the sliding window indexes, without oneDNN's channels-last output and a second, converted copy of it.

    Example: ``pointwise_conv_planar(x, w, b)`` equals ``F.conv3d(x, w, b)`` to float32 rounding for
    ``x`` ``(N, C, D, H, W)`` (any layout), ``w`` ``(K, C, 1, 1, 1)``; the result is contiguous.
    """
    n, channels = x.shape[:2]
    classes = weight.shape[0]
    matrix = weight.reshape(classes, channels)
    out = torch.empty((n, classes, *x.shape[2:]), dtype=x.dtype, device=x.device)
    for i in range(n):
        source, target = x[i].reshape(channels, -1), out[i].view(classes, -1)  # views for both layouts
        if bias is None:
            torch.mm(matrix, source, out=target)
        else:
            torch.addmm(bias.view(classes, 1), matrix, source, out=target)
    return out


def _normalisable(x: Any) -> bool:
    """Whether :func:`instance_norm_channels_last` takes ``x``: a channels-last float32 or bfloat16 CPU tensor,
    no autograd."""
    return (
        isinstance(x, torch.Tensor)
        and _channels_last(x)
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and not (torch.is_grad_enabled() and x.requires_grad)
    )


class LowPrecisionWeights:
    """Copies of a network's float32 convolution weights in a lower precision, made once and reused.

    Keyed on the parameter (or the view of one, as the lean U-Net's split decoder convolution passes) and its
    version counter: a weight changed in place (``load_state_dict`` of another fold) gets a fresh copy.
    Only parameters (and views of them) are kept; any other weight tensor is converted per call. The
    network's own parameters are never modified.

    Example: ``cache = LowPrecisionWeights(torch.bfloat16)``; ``cache(conv.weight)`` is a bfloat16 copy, the
    same tensor on every later call while ``conv.weight`` is unchanged.
    """

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self._copies: dict[tuple[int, tuple[int, ...], tuple[int, ...]], tuple[int, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        if not (isinstance(weight, nn.Parameter) or isinstance(weight._base, nn.Parameter)):
            return weight.to(self.dtype)
        key = (weight.data_ptr(), tuple(weight.shape), weight.stride())
        version = weight._version
        held = self._copies.get(key)
        if held is None or held[0] != version:
            # the source is held too, so that its address cannot be reused by another tensor under this key
            held = (version, weight, weight.to(self.dtype))
            self._copies[key] = held
        return held[2]

    def __len__(self) -> int:
        return len(self._copies)


class OneDNNConvolutions(TorchFunctionMode):
    """While active, run every CPU float32 ``F.conv3d`` / ``F.conv_transpose3d`` on oneDNN.

    With ``channels_last`` (default) the convolutions also return channels-last tensors (oneDNN's fastest
    layout here, no reorders), so the activations between them stay channels-last, and ``F.instance_norm``
    of channels-last tensors runs :func:`instance_norm_channels_last`. A 1x1x1 convolution (a segmentation
    head) runs as a matrix product written in the plain layout (:func:`pointwise_conv_planar`), so the logits
    need no layout copy. Anything else (CUDA tensors, other
    dtypes, ``padding="same"``, tensors that need gradients) passes through unchanged. Weights and module
    state are not touched, so ``load_state_dict`` of another fold still works.

    With ``dtype=torch.bfloat16`` the 3x3x3 and transposed convolutions run in bfloat16 (AMX tiles where the CPU
    has them): float32 inputs are converted, weights are converted once (:class:`LowPrecisionWeights`), the
    outputs and so the activations between layers are bfloat16 (oneDNN accumulates in float32); instance norms
    compute their statistics in float32; 1x1x1 heads read their input as float32 and return float32 logits.

    Example::

        with torch.inference_mode(), OneDNNConvolutions() as mode:
            logits = network(window)          # (1, K, X, Y, Z), as without the mode to ~1e-5
        mode.routed                           # convolutions that ran on oneDNN, e.g. 18

    Attributes:
        routed: number of convolutions sent to oneDNN so far.
        dtype: the convolutions' precision, ``torch.float32`` or ``torch.bfloat16``.
    """

    def __init__(
        self,
        *,
        channels_last: bool = True,
        dtype: torch.dtype = torch.float32,
        weights: LowPrecisionWeights | None = None,
    ) -> None:
        super().__init__()
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype!r}")
        self.channels_last = channels_last
        self.dtype = dtype
        self.routed = 0
        low = dtype != torch.float32
        self._weights = (weights if weights is not None else LowPrecisionWeights(dtype)) if low else None

    def _layout(self, y: torch.Tensor) -> torch.Tensor:
        if self.channels_last and y.shape[1] > 1 and not _channels_last(y):
            return y.contiguous(memory_format=CHANNELS_LAST)  # 1-channel inputs give plain outputs
        return y

    def _operands(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input and weight in the mode's precision (bias stays float32: oneDNN adds it to float32 sums)."""
        if self._weights is None:
            return x, weight
        return x.to(self.dtype), self._weights(weight)

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.conv3d:
            x, weight, bias, stride, padding, dilation, groups = _bind(_CONV_ARGS, args, kwargs)
            if _routable(x, weight, self.dtype) and not isinstance(padding, str):
                self.routed += 1
                if _pointwise(weight, stride, padding, dilation, groups):
                    return pointwise_conv_planar(x.float(), weight, bias)  # heads: float32 logits
                x, weight = self._operands(x, weight)
                y = torch.mkldnn_convolution(
                    x, weight, bias, _triple(padding), _triple(stride), _triple(dilation), int(groups)
                )
                return self._layout(y)
        elif func is F.conv_transpose3d:
            x, weight, bias, stride, padding, out_pad, groups, dilation = _bind(_CONV_T_ARGS, args, kwargs)
            if _routable(x, weight, self.dtype):
                self.routed += 1
                x, weight = self._operands(x, weight)
                y = torch.ops.mkldnn._convolution_transpose_pointwise(
                    x, weight, bias, _triple(padding), _triple(out_pad), _triple(stride), _triple(dilation),
                    int(groups), "none", [], None,
                )  # fmt: skip
                return self._layout(y)
        elif func is F.instance_norm and self.channels_last:
            x, running_mean, _, weight, bias, use_input_stats, _, eps = _bind(_NORM_ARGS, args, kwargs)
            if _normalisable(x) and use_input_stats and running_mean is None:
                return instance_norm_channels_last(x, weight, bias, float(eps))
        return func(*args, **kwargs)


def resolve_cpu_backend(requested: CpuBackend | str, *, capability: CpuCapability | None = None) -> CpuBackend:
    """The backend ``requested`` stands for on this machine (``auto`` resolved).

    Examples: ``resolve_cpu_backend("auto")`` is ``CpuBackend.ONEDNN_BF16`` on a CPU with AMX bf16 units
    (Xeon Sapphire Rapids and later), else ``CpuBackend.ONEDNN`` on every x86-64 / aarch64 build of torch
    (:func:`~GASACore.inference.cpu_capability.auto_cpu_backend`); ``resolve_cpu_backend("openvino")`` is
    ``CpuBackend.OPENVINO`` whether or not the package is installed (:func:`prepare_cpu_forward` falls back
    when it is not).

    Raises:
        ValueError: not one of :class:`CpuBackend`'s values.
    """
    backend = check_cpu_backend(requested)
    if backend is CpuBackend.AUTO:
        return auto_cpu_backend(capability if capability is not None else detect_cpu_capability())[0]
    return backend


@dataclass
class CpuForward:
    """A prepared CPU forward pass: ``forward(x)`` maps ``(B, C, X, Y, Z)`` float32 to the network's output.

    Attributes:
        network: the PyTorch network; what every fallback runs.
        backend: the backend in use now (``eager`` after a fallback).
        requested: the backend that was asked for.
        reason: why ``backend`` differs from ``requested`` (a fallback), or what ``auto`` chose; else empty.
    """

    network: nn.Module
    backend: CpuBackend
    requested: CpuBackend
    reason: str = ""
    _accelerated: Callable[[torch.Tensor], Any] | None = field(default=None, repr=False)

    def __call__(self, x: torch.Tensor) -> Any:
        if self._accelerated is None:
            return self.network(x)
        try:
            return self._accelerated(x)
        except (torch.cuda.OutOfMemoryError, MemoryError):  # out of memory is not the backend's fault: no rerun
            raise
        except Exception as err:  # any backend failure: the same call in plain PyTorch decides
            cause = f"{self.backend.value} failed on input {tuple(x.shape)}: {type(err).__name__}: {err}"
            if self.backend is CpuBackend.ONEDNN_BF16:  # float32 oneDNN first, then plain PyTorch
                float32 = _onednn_call(self.network)
                try:
                    output = float32(x)
                except (torch.cuda.OutOfMemoryError, MemoryError):
                    raise
                except Exception:  # plain PyTorch below decides, as for every backend
                    pass
                else:
                    self.fall_back(cause, to=CpuBackend.ONEDNN, forward=float32)
                    return output
            output = self.network(x)  # raises too when the network itself rejects x: then nothing changes
            self.fall_back(cause)
            return output

    def fall_back(
        self,
        reason: str,
        *,
        to: CpuBackend = CpuBackend.EAGER,
        forward: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        """Switch to ``to`` (plain PyTorch unless told, else with ``forward``) for good, logging ``reason`` once."""
        logger.warning("CPU backend %s -> %s: %s", self.backend.value, to.value, reason)
        self.backend, self.reason, self._accelerated = to, reason, forward


@dataclass
class ForwardRecord:
    """What ran a prediction's forward passes, for the run's report; filled in by the sliding window.

    Attributes:
        device: ``"cpu"`` or ``"cuda:N"``.
        requested: the CPU backend asked for (``auto`` included); empty on CUDA.
        backend: the CPU backend that ran the last fold (``eager`` after a fallback); empty on CUDA.
        reason: why: ``auto``'s choice, or the fallback's cause.
        threads: CPU threads of the last window batch (0 on CUDA).
    """

    device: str = ""
    requested: str = ""
    backend: str = ""
    reason: str = ""
    threads: int = 0

    def note(self, prepared: CpuForward) -> None:
        """Record what ``prepared`` runs and why."""
        self.requested, self.backend = prepared.requested.value, prepared.backend.value
        self.reason = prepared.reason or self.reason


def _onednn_call(network: nn.Module, dtype: torch.dtype = torch.float32) -> Callable[[torch.Tensor], Any]:
    """``network``'s forward under :class:`OneDNNConvolutions` of ``dtype``; lower-precision weight copies are
    made once per call object (that is, per prepared fold)."""
    forward = lean_unet_forward(network) or network  # nnU-Net's U-Nets: same modules, less memory held
    weights = LowPrecisionWeights(dtype) if dtype != torch.float32 else None

    def call(x: torch.Tensor) -> Any:
        with OneDNNConvolutions(dtype=dtype, weights=weights):
            output = forward(x)
        # channels-last logits back to the plain layout callers index and view (a copy of K x window only)
        return _float_logits(output)

    return call


def _float_logits(output: Any) -> Any:
    """Float32 contiguous logits; a deep-supervision list as float32 tensors in their own layouts."""
    if isinstance(output, torch.Tensor):
        return output.float().contiguous()
    if isinstance(output, (list, tuple)):
        return type(output)(o.float() if isinstance(o, torch.Tensor) else o for o in output)
    return output


def prepare_cpu_forward(
    network: nn.Module,
    *,
    input_shape: Sequence[int],
    backend: CpuBackend | str = CpuBackend.AUTO,
    num_threads: int | None = None,
    cache_dir: str | Path | None = None,
    capability: CpuCapability | None = None,
) -> CpuForward:
    """Prepare ``network`` (in eval mode, weights loaded, on the CPU) for fast CPU forward passes.

    Args:
        network: maps ``(B, C, X, Y, Z)`` float32 windows to logits. It is not modified.
        input_shape: ``(B, C, X, Y, Z)`` of the windows it will get; OpenVINO compiles for exactly this shape
            (other shapes run in PyTorch).
        backend: ``auto`` (``onednn-bf16`` where the CPU has AMX bf16 units, else ``onednn``), ``eager``,
            ``onednn``, ``onednn-bf16`` (falls back to ``onednn`` where oneDNN has no bf16 kernels) or
            ``openvino``.
        num_threads: CPU threads for OpenVINO (default: torch's current setting). PyTorch backends use
            torch's setting.
        cache_dir: OpenVINO only: folder for converted models, keyed by network structure, weights, shape
            and versions, so that a second run skips the conversion. ``None``: convert every time.
        capability: what the CPU offers (default: :func:`~GASACore.inference.cpu_capability.detect_cpu_capability`).

    Returns:
        The callable; its ``backend`` says what runs (``eager`` after a fallback, with the ``reason``).

    Raises:
        ValueError: bad ``backend`` or ``input_shape``.
    """
    capability = capability if capability is not None else detect_cpu_capability()
    requested = resolve_cpu_backend(backend, capability=capability)
    auto = check_cpu_backend(backend) is CpuBackend.AUTO
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 5 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be 5 positive sizes (B, C, X, Y, Z), got {tuple(input_shape)!r}")
    prepared = CpuForward(network, requested, requested, auto_cpu_backend(capability)[1] if auto else "")
    if requested in (CpuBackend.ONEDNN, CpuBackend.ONEDNN_BF16):
        if not capability.onednn:
            prepared.fall_back("this torch build has no oneDNN (mkldnn)")
        elif requested is CpuBackend.ONEDNN_BF16 and not capability.onednn_bf16:
            why = "oneDNN has no bf16 convolutions on this CPU: float32 onednn instead"
            prepared.fall_back(f"onednn-bf16 requested but {why}", to=CpuBackend.ONEDNN, forward=_onednn_call(network))
        else:
            dtype = torch.bfloat16 if requested is CpuBackend.ONEDNN_BF16 else torch.float32
            prepared._accelerated = _onednn_call(network, dtype)
    elif requested is CpuBackend.OPENVINO:
        from GASACore.inference.cpu_openvino import openvino_call

        threads = num_threads if num_threads is not None else torch.get_num_threads()
        try:
            prepared._accelerated = openvino_call(network, shape, threads=threads, cache_dir=cache_dir)
        except Exception as err:  # not installed, unsupported operator, conversion error
            prepared.fall_back(f"OpenVINO could not prepare the network: {type(err).__name__}: {err}")
    why = prepared.reason or f"requested {check_cpu_backend(backend).value}"
    logger.info("CPU forward: %s (%s) for windows %s", prepared.backend.value, why, shape)
    return prepared
