"""predict_sliding_window on CPU: linear oracles, folds, batches, progress, cancel, NaN, skipping, OOM fallback."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

import pytest
import torch
from inference_helpers import PATCH, Affine, config

from GASACore.errors import Cancelled, GASAError, InputError, ModelError
from GASACore.inference import SKIPPED_LOGITS, predict_sliding_window, retry_on_cuda_oom, window_slicers

# Oracle tolerance: a Gaussian-weighted mean of identical values is exact up to float32 rounding.
TOL = {"rtol": 1e-6, "atol": 1e-5}


def _image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(1, 20, 31, 17), (1, 8, 12, 10), (1, 5, 7, 3), (2, 13, 12, 25), (1, 30, 9, 14)])
@pytest.mark.parametrize(("mirror_axes", "use_gaussian"), [((), True), ((0, 1, 2), True), ((1,), False), ((), False)])
def test_linear_oracle(
    affine: Affine, shape: tuple[int, ...], mirror_axes: tuple[int, ...], use_gaussian: bool
) -> None:
    image = _image(*shape)
    logits = predict_sliding_window(
        affine, image, num_classes=3, config=config(mirror_axes=mirror_axes, use_gaussian=use_gaussian)
    )
    assert logits.shape == (3, *shape[1:]) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    torch.testing.assert_close(logits, affine.expected(image), **TOL)


def test_oracle_exact_without_overlap(affine: Affine) -> None:
    # step 1.0 on a multiple of the patch: every voxel is predicted once, (x + flipped x) / 2 is exact
    image = _image(1, 16, 24, 20)
    cfg = config(step_size=1.0, use_gaussian=False, mirror_axes=(1,))
    assert torch.equal(predict_sliding_window(affine, image, num_classes=3, config=cfg), affine.expected(image))
    assert affine.calls == 2 * 2 * 2 * 2


def test_window_count_and_placement(affine: Affine) -> None:
    image = _image(1, 20, 31, 17)
    predict_sliding_window(affine, image, num_classes=3, config=config(mirror_axes=()))
    slicers = window_slicers((20, 31, 17), PATCH, 0.5)
    assert affine.calls == len(slicers) == 4 * 5 * 3
    for seen, slicer in zip(affine.inputs, slicers, strict=True):
        assert torch.equal(seen[0], image[slicer])


def test_batches_give_the_same_logits() -> None:
    image = _image(1, 20, 31, 17)
    single, batched = Affine(), Affine()
    one = predict_sliding_window(single, image, num_classes=3, config=config(batch_size=1))
    many = predict_sliding_window(batched, image, num_classes=3, config=config(batch_size=7))
    torch.testing.assert_close(one, many, rtol=1e-6, atol=1e-6)
    assert single.calls == 60 * 8 and batched.calls == 9 * 8  # ceil(60 / 7) batches, 8 mirrors each


def test_fold_averaging() -> None:
    image = _image(1, 11, 20, 13)
    folds = [
        Affine(scales=(1.0, 2.0, -1.0), shifts=(0.5, 0.0, 1.0)),
        Affine(scales=(3.0, 0.0, 1.0), shifts=(-0.5, 2.0, 0.0)),
    ]
    net = Affine()
    logits = predict_sliding_window(
        net, image, num_classes=3, config=config(), fold_weights=[f.state_dict() for f in folds]
    )
    mean = (folds[0].expected(image) + folds[1].expected(image)) / 2
    torch.testing.assert_close(logits, mean, **TOL)
    assert torch.equal(net.conv.weight, folds[1].conv.weight)  # the last fold stays loaded
    with pytest.raises(ModelError, match="fold 1"):
        predict_sliding_window(net, image, num_classes=3, config=config(), fold_weights=[folds[0].state_dict(), {}])
    with pytest.raises(ValueError, match="at least one"):
        predict_sliding_window(net, image, num_classes=3, config=config(), fold_weights=[])


def test_progress_is_monotone_and_ends_at_one(affine: Affine) -> None:
    seen: list[tuple[str, float]] = []
    folds = [affine.state_dict()] * 2
    predict_sliding_window(
        affine, _image(1, 20, 31, 17), num_classes=3, config=config(batch_size=4, mirror_axes=()),
        fold_weights=folds, progress=lambda stage, fraction: seen.append((stage, fraction)),
    )  # fmt: skip
    fractions = [f for _, f in seen]
    assert {s for s, _ in seen} == {"predict"}
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(b > a for a, b in itertools.pairwise(fractions))
    assert len(fractions) == 1 + 2 * 15  # start + 60 windows / 4 per batch x 2 folds
    assert fractions[15] == pytest.approx(0.5)


def test_cancel_event_stops_within_one_window() -> None:
    event = threading.Event()

    def hook(call: int, _: torch.Tensor) -> None:
        if call == 3:
            event.set()

    net = Affine(hook=hook)
    with pytest.raises(Cancelled):
        predict_sliding_window(net, _image(1, 20, 31, 17), num_classes=3, config=config(mirror_axes=()), cancel=event)
    assert net.calls == 3


def test_cancel_callable_is_checked_before_every_batch(affine: Affine) -> None:
    checks = []

    def cancel() -> bool:
        checks.append(affine.calls)
        return len(checks) > 5

    with pytest.raises(Cancelled):
        predict_sliding_window(affine, _image(1, 20, 31, 17), num_classes=3, config=config(batch_size=2), cancel=cancel)
    assert checks == [0, 8, 16, 24, 32, 40]  # one forward per mirror, each on a batch of 2 windows
    assert affine.calls == 5 * 8
    with pytest.raises(ValueError, match="cancel"):
        predict_sliding_window(affine, _image(1, 8, 12, 10), num_classes=3, config=config(), cancel=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_output_names_fold_and_window(bad: float) -> None:
    def hook(call: int, x: torch.Tensor) -> torch.Tensor | None:
        return torch.full((x.shape[0], 3, *PATCH), bad) if call == 5 + 60 else None

    net = Affine(hook=hook)
    with pytest.raises(GASAError, match=r"fold 1 \(of 2\), window 5 of 60 starting at voxel \(0, 5, 4\)"):
        predict_sliding_window(
            net,
            _image(1, 20, 31, 17),
            num_classes=3,
            config=config(mirror_axes=()),
            fold_weights=[net.state_dict()] * 2,
        )


def test_skip_threshold_skips_air_windows() -> None:
    image = _image(1, 20, 31, 17)
    image[:, :, 15:] = -5.0  # "air": Y >= 15
    image[0, 0, 20, 5] = -1.0  # one voxel above the threshold keeps its windows
    plain, skipping = Affine(), Affine()
    full = predict_sliding_window(plain, image, num_classes=3, config=config(mirror_axes=()))
    skipped = predict_sliding_window(skipping, image, num_classes=3, config=config(mirror_axes=(), skip_threshold=-4.0))
    slicers = window_slicers((20, 31, 17), PATCH, 0.5)
    active = [s for s in slicers if bool(image[s].amax() >= -4.0)]
    assert 0 < len(active) < len(slicers) and skipping.calls == len(active)
    assert all(bool(x.amax() >= -4.0) for x in skipping.inputs)
    covered_by_skipped, covered_by_active = (
        torch.zeros(20, 31, 17, dtype=torch.bool),
        torch.zeros_like(full[0], dtype=torch.bool),
    )
    for s in slicers:
        (covered_by_active if s in active else covered_by_skipped)[s[1:]] = True
    untouched = ~covered_by_skipped
    assert untouched.any() and torch.equal(skipped[:, untouched], full[:, untouched])
    only_skipped = ~covered_by_active
    assert only_skipped.any() and torch.isfinite(skipped).all()
    assert (skipped[0, only_skipped] == SKIPPED_LOGITS[0]).all() and (
        skipped[1:, only_skipped] == SKIPPED_LOGITS[1]
    ).all()
    assert (skipped.argmax(0)[only_skipped] == 0).all()


def test_everything_skipped_is_background(affine: Affine) -> None:
    seen: list[float] = []
    logits = predict_sliding_window(
        affine, torch.full((1, 9, 12, 10), -3.0), num_classes=3, config=config(skip_threshold=0.0),
        progress=lambda _, f: seen.append(f),
    )  # fmt: skip
    assert affine.calls == 0 and seen == [1.0]
    assert (logits.argmax(0) == 0).all() and (logits[0] == SKIPPED_LOGITS[0]).all()


def test_air_smaller_than_the_patch_is_skipped_although_the_padding_is_not_air(affine: Affine) -> None:
    small = torch.full((1, 5, 7, 3), -3.0)  # smaller than PATCH on every axis: padded with zeros (> threshold)
    logits = predict_sliding_window(affine, small, num_classes=3, config=config(skip_threshold=0.0))
    assert affine.calls == 0 and tuple(logits.shape) == (3, 5, 7, 3)
    assert (logits[0] == SKIPPED_LOGITS[0]).all() and (logits.argmax(0) == 0).all()
    small[0, 4, 6, 2] = 1.0  # one image voxel above the threshold: its window is predicted
    predict_sliding_window(affine, small, num_classes=3, config=config(skip_threshold=0.0, mirror_axes=()))
    assert affine.calls == 1


def test_result_is_a_normal_tensor_and_training_flag_restored(affine: Affine) -> None:
    affine.train()
    logits = predict_sliding_window(affine, _image(1, 5, 7, 3), num_classes=3, config=config())
    assert not logits.is_inference()
    logits.mul_(2)  # in-place use outside inference mode works
    assert affine.training


def test_refuses_bad_inputs(affine: Affine) -> None:
    with pytest.raises(InputError, match=r"\(C, X, Y, Z\)"):
        predict_sliding_window(affine, torch.zeros(8, 12, 10), num_classes=3, config=config())
    with pytest.raises(InputError, match="finite"):
        predict_sliding_window(affine, torch.full((1, 8, 12, 10), float("nan")), num_classes=3, config=config())
    with pytest.raises(ValueError, match="num_classes"):
        predict_sliding_window(affine, torch.zeros(1, 8, 12, 10), num_classes=0, config=config())
    with pytest.raises(ModelError, match=r"\(1, 4, 8, 12, 10\)"):
        predict_sliding_window(affine, torch.zeros(1, 8, 12, 10), num_classes=4, config=config())


def test_deep_supervision_list_uses_the_first_output() -> None:
    net = Affine(hook=lambda _, x: [torch.ones(x.shape[0], 3, *PATCH), torch.zeros(x.shape[0], 3, 4, 6, 5)])
    logits = predict_sliding_window(net, _image(1, 9, 12, 10), num_classes=3, config=config())
    torch.testing.assert_close(logits, torch.ones(3, 9, 12, 10), **TOL)


def test_out_of_memory_halves_the_batch_on_the_cpu_path() -> None:
    def hook(_: int, x: torch.Tensor) -> None:
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    seen: list[float] = []
    net, reference = Affine(hook=hook), Affine()
    image = _image(1, 20, 31, 17)
    logits = predict_sliding_window(
        net, image, num_classes=3, config=config(batch_size=8, mirror_axes=()), progress=lambda _, f: seen.append(f)
    )
    torch.testing.assert_close(logits, predict_sliding_window(reference, image, num_classes=3, config=config()), **TOL)
    assert net.calls == 2 + 30  # one batch of 8 failed, one of 4 failed, then 30 batches of 2
    assert seen[-1] == 1.0 and all(b > a for a, b in itertools.pairwise(seen))


def test_retry_on_cuda_oom_sequence() -> None:
    attempts: list[tuple[bool, int]] = []

    def attempt(on_device: bool, batch: int) -> str:
        attempts.append((on_device, batch))
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(GASAError, match=r"out of memory .* 1 window per batch and logits on the CPU"):
        retry_on_cuda_oom(attempt, device=torch.device("cpu"), on_device=True, batch_size=4)
    assert attempts == [(True, 4), (False, 4), (False, 2), (False, 1)]

    def flaky(on_device: bool, batch: int) -> str:
        if on_device:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return f"cpu accumulation, batch {batch}"

    assert (
        retry_on_cuda_oom(flaky, device=torch.device("cpu"), on_device=True, batch_size=3)
        == "cpu accumulation, batch 3"
    )

    def other_error(on_device: bool, batch: int) -> str:
        raise RuntimeError("not a memory problem")

    with pytest.raises(RuntimeError, match="not a memory problem"):
        retry_on_cuda_oom(other_error, device=torch.device("cpu"), on_device=True, batch_size=2)


class _LazyFolds(Sequence):
    """State dicts made only when indexed; records which folds were read."""

    def __init__(self, nets: list[Affine]) -> None:
        self.nets, self.read = nets, []

    def __len__(self) -> int:
        return len(self.nets)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        self.read.append(index)
        return self.nets[index].state_dict()


def test_fold_weights_are_read_lazily_one_at_a_time() -> None:
    folds = _LazyFolds([Affine(scales=(1.0, 2.0, 3.0)), Affine(scales=(3.0, 2.0, 1.0))])
    reads_when_fold_1_starts = []

    def hook(call: int, _: torch.Tensor) -> None:
        if call == 1:
            reads_when_fold_1_starts.extend(folds.read)

    image = _image(1, 9, 12, 10)
    logits = predict_sliding_window(Affine(hook=hook), image, num_classes=3, config=config(), fold_weights=folds)
    assert reads_when_fold_1_starts == [0] and folds.read == [0, 1]
    torch.testing.assert_close(logits, (folds.nets[0].expected(image) + folds.nets[1].expected(image)) / 2, **TOL)
