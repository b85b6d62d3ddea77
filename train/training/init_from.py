"""Starting a GASA network from a plain nnU-Net network's weights, with the same output at step 0.

GASA-UNet (GASA-L) on a ``PlainConvUNet`` (``ResidualEncoderUNet``) plan has the plain network's state-dict
keys plus ``gasa.*``, and one widened tensor: the first decoder transposed convolution takes ``C + 3 * dim``
inputs, ``concat(x, G)`` (``GASACore.network.unets.BottleneckTransposedConv``). :func:`transfer_base_weights`
copies every backbone tensor, writes the base's transposed-convolution weight into the first ``C`` input
channels and zeros into the ``3 * dim`` GASA ones. The GASA block keeps its fresh initialisation: its feature
is multiplied by zero, so the network computes exactly what the base does (eval mode: logits equal bit for
bit, every deep-supervision output too), and training lets the GASA path in from the first step on (the
zero weights get gradients ``G * upstream``; the block gets gradients once they are non-zero).

nnU-Net's own ``load_pretrained_weights`` cannot do this: it refuses any shape mismatch (the widened weight)
and never copies the segmentation heads. Here heads are copied when the data set has the base's labels (same
``labels`` and ``regions_class_order``), else kept fresh and said so (the logits then differ by design).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from GASACore.network.unets import BottleneckTransposedConv

__all__ = ["WeightTransfer", "same_labels", "transfer_base_weights", "unwrap_network"]

logger = logging.getLogger(__name__)

_HEADS = ".seg_layers."


@dataclass(frozen=True)
class WeightTransfer:
    """What :func:`transfer_base_weights` did, by state-dict key.

    Attributes:
        copied: tensors copied from the base unchanged.
        widened: ``key -> C``: the base tensor went into input channels ``[:C]``, zeros into the rest.
        fresh: tensors the base does not have (the GASA block), or heads kept fresh; initialised as built.
    """

    copied: tuple[str, ...]
    widened: Mapping[str, int]
    fresh: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "copied_tensors": len(self.copied),
            "zero_initialised": [f"{key}[{channels}:]" for key, channels in self.widened.items()],
            "fresh_tensors": list(self.fresh),
        }


def unwrap_network(network: nn.Module) -> nn.Module:
    """The plain module inside DDP and ``torch.compile`` wrappers (whose state-dict keys are the network's)."""
    module = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
    return getattr(module, "_orig_mod", module)


def same_labels(base_dataset: Mapping[str, Any], dataset: Mapping[str, Any]) -> bool:
    """Whether two dataset.json define the same outputs: ``labels`` and ``regions_class_order`` equal."""
    return all(base_dataset.get(key) == dataset.get(key) for key in ("labels", "regions_class_order"))


def _widened_inputs(network: nn.Module) -> dict[str, int]:
    """``weight key -> backbone channels`` of each ``BottleneckTransposedConv`` in ``network``."""
    return {
        f"{name}.weight": module.backbone_channels
        for name, module in network.named_modules()
        if isinstance(module, BottleneckTransposedConv)
    }


def _mismatch(key: str, expected: tuple[int, ...], given: tuple[int, ...] | None) -> str:
    return f"{key}: the GASA network has {expected}, the base {'nothing' if given is None else given}"


def transfer_base_weights(
    network: nn.Module, base_state: Mapping[str, torch.Tensor], *, copy_heads: bool = True
) -> WeightTransfer:
    """Load a plain nnU-Net network's weights into the GASA network built on its plan (in place).

    Args:
        network: the GASA network (GASA-UNet / GASA-L; a DDP or compiled wrapper is unwrapped).
        base_state: the base network's state dict (nnU-Net checkpoint ``network_weights``).
        copy_heads: copy the segmentation heads (``.seg_layers.``); ``False`` keeps them fresh (other labels).

    Returns:
        What was copied, widened and left fresh.

    Raises:
        ValueError: a backbone tensor missing from the base or shaped differently, base tensors the network
            does not have, or a network without a widened transposed convolution (not a GASA U-Net).
    """
    module = unwrap_network(network)
    own = module.state_dict()
    widened = _widened_inputs(module)
    if not widened:
        raise ValueError(f"expected a GASA U-Net (with a widened first transposed convolution), got {type(module)}")
    problems = [f"{key}: only the base has it" for key in sorted(set(base_state) - set(own))]
    copied, fresh, new_state = [], [], {}
    for key, tensor in own.items():
        base = base_state.get(key)
        if key.startswith("gasa.") or (_HEADS in key and not copy_heads):
            fresh.append(key)
        elif key in widened and base is not None and base.shape == (widened[key], *tensor.shape[1:]):
            new_state[key] = torch.cat((base, base.new_zeros((tensor.shape[0] - widened[key], *base.shape[1:]))))
        elif base is None or base.shape != tensor.shape:
            problems.append(_mismatch(key, tuple(tensor.shape), None if base is None else tuple(base.shape)))
        else:
            new_state[key] = base
            copied.append(key)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"the base model's weights do not fit the GASA network built on its plan: {shown}")
    module.load_state_dict({**own, **new_state}, strict=True)
    logger.info("copied %d base tensors, zero-initialised the GASA inputs of %s", len(copied), ", ".join(widened))
    return WeightTransfer(tuple(copied), widened, tuple(fresh))
