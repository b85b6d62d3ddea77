"""OpenVINO backend of :func:`~GASACore.inference.cpu_runtime.prepare_cpu_forward`, with an on-disk model cache.

OpenVINO (optional: ``pip install openvino``) converts the PyTorch network once (weights baked in, float32
forced so that CPUs with bf16 units do not silently lower precision), compiles it for one static window
shape and keeps its activations in blocked layouts with fused normalisation: 1.3-1.5x faster than PyTorch
with oneDNN convolutions on the measured networks (``bench/cpu_conv_bench.py``). Two costs keep it opt-in:
conversion takes 15-250 s on 2 busy cores (so converted models are kept in a cache folder, keyed by everything
that changes the result), and its fused instance norm is less exact (2e-4 vs 2e-6 of a float64 reference at
1.8 M voxels per channel): on a 128x112x128 window of a random-weight GASA-UNet the logits moved by up to 0.24
and 1.5% of the argmax changed, while windows up to 64^3 stayed within 7e-4 (>= 99.986%). Validate it on the
model before relying on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["model_cache_key", "openvino_call"]

logger = logging.getLogger(__name__)


def model_cache_key(network: nn.Module, input_shape: Sequence[int], versions: Sequence[str]) -> str:
    """SHA-256 (hex) of the network's structure (``repr`` and class), every parameter and buffer, the input
    shape and the library ``versions``: equal keys mean the same converted model.

    Example: two networks with the same weights give the same key; changing one weight, the input shape or the
    OpenVINO version gives another.
    """
    digest = hashlib.sha256()
    digest.update(f"{type(network).__module__}.{type(network).__qualname__}\n{network!r}\n".encode())
    digest.update(f"{tuple(int(s) for s in input_shape)}\n{tuple(versions)}\n".encode())
    for name, tensor in sorted(network.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name} {data.dtype} {tuple(data.shape)}\n".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


@contextmanager
def _root_logging_kept() -> Iterator[None]:
    """Undo what a library does to the root logger inside the block (level and handlers).

    OpenVINO's PyTorch frontend calls ``logging.basicConfig``-like code when a conversion fails: the root
    logger's level becomes ERROR and a stderr handler is added, which would silence every GASACore warning
    for the rest of the process (and print duplicates to the user's console).
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)


def _convert(network: nn.Module, shape: tuple[int, ...]) -> Any:
    import openvino as ov

    example = torch.zeros(shape, dtype=torch.float32)
    with torch.no_grad(), _root_logging_kept():
        return ov.convert_model(network, example_input=example, input=[list(shape)])


def _cached_model(core: Any, network: nn.Module, shape: tuple[int, ...], cache_dir: Path | None) -> Any:
    """The converted model, read from ``cache_dir`` when there, else converted (and saved atomically)."""
    import openvino as ov

    if cache_dir is None:
        return _convert(network, shape)
    key = model_cache_key(network, shape, (ov.__version__, torch.__version__))
    xml = cache_dir / f"{key}.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        logger.info("OpenVINO model from the cache %s", xml)
        return core.read_model(str(xml))
    model = _convert(network, shape)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
    try:
        ov.save_model(model, str(temp / "model.xml"), compress_to_fp16=False)
        os.replace(temp / "model.bin", xml.with_suffix(".bin"))  # the .bin first: an .xml means both are whole
        os.replace(temp / "model.xml", xml)
    finally:
        for leftover in temp.iterdir():
            leftover.unlink()
        temp.rmdir()
    return model


def openvino_call(
    network: nn.Module, input_shape: Sequence[int], *, threads: int, cache_dir: str | Path | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Convert and compile ``network`` for windows of ``input_shape``; returns ``call(x) -> logits``.

    ``call`` takes and returns float32 CPU tensors ``(B, C, X, Y, Z)`` -> ``(B, K, X, Y, Z)`` (the first
    output of a network that returns several); an input of another shape runs in PyTorch with oneDNN.

    Raises:
        ImportError: ``openvino`` is not installed.
        Exception: whatever OpenVINO raises for an operator it cannot convert.
    """
    import openvino as ov

    from GASACore.inference.cpu_runtime import OneDNNConvolutions

    shape = tuple(int(s) for s in input_shape)
    start = time.perf_counter()
    core = ov.Core()
    model = _cached_model(core, network, shape, None if cache_dir is None else Path(cache_dir))
    config = {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    logger.info("OpenVINO ready in %.1f s (%d threads, windows %s)", time.perf_counter() - start, threads, shape)

    def call(x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != shape:
            with OneDNNConvolutions():
                return network(x)
        outputs = request.infer({0: x.detach().to(dtype=torch.float32).contiguous().numpy()})
        return torch.from_numpy(outputs[0].copy())

    return call
