"""What native libraries print on descriptor 2 reaches the log, not the terminal (issue 10: no "** ERROR: NWAD")."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from small_mounts import tmpfs

from GASACore.errors import OutputError
from GASACore.io.geometry import Geometry
from GASACore.io.native_stderr import native_stderr_to_log
from GASACore.io.writer import write_label_map

_LOGGER = logging.getLogger("test_native_stderr")


def test_lines_written_to_descriptor_2_are_logged_instead(capfd, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=_LOGGER.name)
    with native_stderr_to_log(_LOGGER, "libfoo"):
        os.write(2, b"** ERROR: something native\n\nsecond line\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    assert [r.getMessage() for r in caplog.records] == ["libfoo: ** ERROR: something native", "libfoo: second line"]


def test_descriptor_2_is_restored_when_the_body_raises(capfd, caplog) -> None:
    caplog.set_level(logging.WARNING, logger=_LOGGER.name)
    with pytest.raises(RuntimeError, match="boom"), native_stderr_to_log(_LOGGER, "lib", level=logging.WARNING):
        os.write(2, b"native detail\n")
        raise RuntimeError("boom")
    os.write(2, b"visible\n")
    assert capfd.readouterr().err == "visible\n"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, "lib: native detail")]


def test_a_full_disk_nifti_write_prints_nothing_of_simpleitk(tmp_path: Path, capfd, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="GASACore.io.writer")
    labels = np.random.default_rng(0).integers(0, 14, (40, 64, 64)).astype(np.uint8)  # 160 KB, compresses poorly
    geometry = Geometry(size=(64, 64, 40), spacing=(1.5, 1.5, 3.0), origin=(0.0, 0.0, 0.0),
                        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # fmt: skip
    with tmpfs(tmp_path / "disk") as disk:
        with pytest.raises(OutputError, match="no space left on device"):
            write_label_map(labels, geometry, disk / "seg.nii")
        assert list(disk.iterdir()) == []
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert any(r.getMessage().startswith("SimpleITK: ") and "NWAD" in r.getMessage() for r in caplog.records)
