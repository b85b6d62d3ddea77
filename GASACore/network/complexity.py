"""Parameters and multiply-accumulates (MACs) of a built network, counted with thop's rules.

The paper's Table 4 "FLOPs" are MACs from ``thop.profile`` (pytorch-OpCounter 0.1.x) on one input of the patch
size, divided by 1e9. thop hooks every module whose type has a rule, runs one forward pass in eval mode and adds:

==============================================  ===============================================================
module                                          MACs (thop 0.1.x)
==============================================  ===============================================================
Conv1/2/3d and ConvTranspose1/2/3d              output elements x (input channels / groups) x kernel volume;
                                                no bias term. For a transposed convolution this is ``stride
                                                volume`` times its real cost: thop treats it like a convolution
                                                producing the (larger) output.
BatchNorm, InstanceNorm, LayerNorm              2 x input elements, doubled with an affine transform
Linear                                          in_features x output elements
Softmax (module)                                rows x (3 x features - 1)
AvgPool / AdaptiveAvgPool                       output elements / (input/output volume + 1) x output elements
Upsample nearest / linear / bilinear / bicubic  output elements x 1 / 5 / 11 / 259; trilinear counts 0
PReLU                                           input elements (eval mode)
ReLU, LeakyReLU, Dropout, MaxPool, ...          0
anything else, and every functional op          0 (``torch.matmul``, ``F.scaled_dot_product_attention``,
                                                ``torch.cat``, additions, tensor ``.softmax()``)
==============================================  ===============================================================

A module with a rule is counted once per call, its children are not visited; other modules are looked into.
Two deliberate differences from thop: rules match subclasses too (thop looks up the exact type, so a subclass
of ``nn.Conv1d`` counts 0 there), and :data:`FUNCTIONAL_RULES` let a module of this project declare ops it
computes functionally that thop *would* count in the authors' code: the GASA block computes its three plane
projections as one matrix product, where the official code called ``nn.Conv2d`` modules (counted by thop).

Counting runs one forward pass, so build the network on the ``meta`` device to count without computing
(``with torch.device("meta"): network = ...``): the paper's BTCV plan then takes about a second on a CPU.

Example:
    >>> with torch.device("meta"):
    ...     net = build_network("gasa-unet", plan=PAPER_BTCV, num_input_channels=1, num_classes=14)
    >>> count_complexity(net, (1, 1, 48, 192, 192)).macs  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from GASACore.network.gasa_block import GASABlock

__all__ = ["FUNCTIONAL_RULES", "THOP_RULES", "Complexity", "count_complexity", "count_parameters"]

logger = logging.getLogger(__name__)

Rule = Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], int]


def _conv(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    kernel = math.prod(module.weight.shape[2:])  # type: ignore[union-attr]
    return output.numel() * (inputs[0].shape[1] // module.groups) * kernel  # type: ignore[operator]


def _norm(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    affine = bool(getattr(module, "affine", False) or getattr(module, "elementwise_affine", False))
    return 2 * inputs[0].numel() * (2 if affine else 1)


def _linear(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return module.in_features * output.numel()  # type: ignore[operator]


def _softmax(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    features = inputs[0].shape[module.dim]  # type: ignore[index]
    return inputs[0].numel() // features * (3 * features - 1)


def _avgpool(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return output.numel()


def _adaptive_avgpool(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    window = math.prod(i / o for i, o in zip(inputs[0].shape[2:], output.shape[2:], strict=True))
    return int((window + 1) * output.numel())


_UPSAMPLE_FACTOR = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 259}


def _upsample(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return _UPSAMPLE_FACTOR.get(str(module.mode), 0) * output.numel()


def _prelu(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return 0 if module.training else inputs[0].numel()


def _zero(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    return 0


#: thop 0.1.x's counting rules by module type (matched along the module's class hierarchy).
THOP_RULES: Mapping[type[nn.Module], Rule] = {
    nn.modules.conv._ConvNd: _conv,  # Conv1/2/3d and ConvTranspose1/2/3d
    nn.modules.batchnorm._NormBase: _norm,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
    nn.LayerNorm: _norm,
    nn.Linear: _linear,
    nn.Softmax: _softmax,
    nn.modules.pooling._AvgPoolNd: _avgpool,
    nn.modules.pooling._AdaptiveAvgPoolNd: _adaptive_avgpool,
    nn.Upsample: _upsample,  # also UpsamplingNearest2d / UpsamplingBilinear2d
    nn.PReLU: _prelu,
    nn.ReLU: _zero,
    nn.ReLU6: _zero,
    nn.LeakyReLU: _zero,
    nn.modules.dropout._DropoutNd: _zero,
    nn.modules.pooling._MaxPoolNd: _zero,
    nn.modules.pooling._AdaptiveMaxPoolNd: _zero,
    nn.ZeroPad2d: _zero,
    nn.PixelShuffle: _zero,
}


def _gasa_projections(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    """The three full-plane projections, counted as the convolutions the official code runs them as."""
    block: GASABlock = module  # type: ignore[assignment]
    n, channels = inputs[0].shape[:2]
    sx, sy, sz = block.spatial_size
    return n * block.dim * channels * (sx * sy * sz) * 3  # each plane of each axis: dim x C x plane area


#: Ops a module of this project computes without calling a child module, added to its children's counts.
FUNCTIONAL_RULES: dict[type[nn.Module], Rule] = {GASABlock: _gasa_projections}


def _rule_for(module: nn.Module, rules: Mapping[type[nn.Module], Rule]) -> Rule | None:
    for cls in type(module).__mro__:
        if cls in rules:
            return rules[cls]
    return None


@dataclass(frozen=True)
class Complexity:
    """What one forward pass of a network costs.

    Attributes:
        parameters: Number of parameters.
        macs: Multiply-accumulates by thop's rules (see the module docstring).
        input_shape: The input ``(N, C, X, Y, Z)`` counted for.
        per_module: MACs per module name (the rule-bearing modules and functional rules), in call order.
        uncounted: Types of leaf modules that ran without a rule (counted 0, as thop does).
    """

    parameters: int
    macs: int
    input_shape: tuple[int, ...]
    per_module: Mapping[str, int] = field(default_factory=dict)
    uncounted: tuple[str, ...] = ()

    @property
    def gmacs(self) -> float:
        """MACs / 1e9: the paper's "FLOPs (G)"."""
        return self.macs / 1e9

    @property
    def mebiparameters(self) -> float:
        """Parameters / 2^20: the paper's "Params (M)"."""
        return self.parameters / 2**20


def count_parameters(network: nn.Module) -> int:
    """Number of parameters of ``network`` (trainable or not; shared parameters once)."""
    return sum(p.numel() for p in network.parameters())


def count_complexity(network: nn.Module, input_shape: Sequence[int]) -> Complexity:
    """Parameters and thop-rule MACs of one forward pass of ``network`` on a zero input of ``input_shape``.

    Runs in eval mode without gradients on the network's device and dtype (``meta``: no computation) and
    restores the training mode afterwards.

    Args:
        network: A built network.
        input_shape: ``(N, C, *spatial)``, e.g. ``(1, 1, 48, 192, 192)`` for the paper's BTCV plan.

    Returns:
        The counts and a per-module breakdown.

    Raises:
        ValueError: A shape that is not all positive integers, or a network without parameters.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 3 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (N, C, *spatial) with positive sizes, got {tuple(input_shape)!r}")
    try:
        reference = next(network.parameters())
    except StopIteration as err:
        raise ValueError(f"{type(network).__name__} has no parameters to take a device and dtype from") from err
    per_module: dict[str, int] = {}
    uncounted: set[str] = set()
    handles = []
    seen: set[int] = set()

    def visit(name: str, module: nn.Module) -> None:
        if id(module) in seen:  # a module registered under two names (e.g. dynamic-network-architectures'
            return  # ``conv`` and ``all_modules.0``) runs once and is counted once
        seen.add(id(module))
        rule = _rule_for(module, THOP_RULES)
        extra = _rule_for(module, FUNCTIONAL_RULES)
        if rule is not None or extra is not None:
            handles.append(
                module.register_forward_hook(_recorder(name or type(module).__name__, rule or extra, per_module))
            )  # type: ignore[arg-type]
        if rule is not None:
            return
        children = list(module.named_children())
        if not children and extra is None:
            handles.append(module.register_forward_hook(lambda m, i, o: uncounted.add(type(m).__name__)))
        for child_name, child in children:
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", network)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            network(torch.zeros(shape, device=reference.device, dtype=reference.dtype))
    finally:
        network.train(was_training)
        for handle in handles:
            handle.remove()
    if uncounted:
        logger.info("modules without a counting rule (0 MACs, as in thop): %s", sorted(uncounted))
    return Complexity(count_parameters(network), sum(per_module.values()), shape, per_module, tuple(sorted(uncounted)))


def _recorder(name: str, rule: Rule, per_module: dict[str, int]) -> Callable[..., None]:
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        per_module[name] = per_module.get(name, 0) + int(rule(module, inputs, output))

    return hook
