"""The Segment button's rules (``panelState.segmentButtonState``) on the real catalogue's entries."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from GASASegmenterLib.catalog import ModelEntry, listModels
from GASASegmenterLib.dependencies import InstallState
from GASASegmenterLib.job import JobState
from GASASegmenterLib.panelState import ButtonState, segmentButtonState

from GASACore.models import License

#: A downloadable catalogue model the engine can run (the bundled catalogue's remote entries cannot yet).
REMOTE = ModelEntry(
    key="liver@1.0.0",
    name="Hospital liver model",
    model="liver@1.0.0",
    state="not installed",
    available=False,
    summary="download - 234 MB - CC-BY-NC-4.0 (research only)",
    id="liver",
    license=License("CC-BY-NC-4.0", commercial_use=False),
    size=233_742_255,
    urls=("https://models.hospital.example/liver.zip",),
)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelEntry]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GASA_HOME", str(tmp_path_factory.mktemp("home")))
        patch.delenv("GASA_CATALOG", raising=False)
        return {entry.id: entry for entry in listModels({})}


def _state(entry: ModelEntry | None, **changes: Any) -> ButtonState:
    values: dict[str, Any] = {
        "installState": None,
        "jobState": None,
        "jobStage": "",
        "hasInput": True,
        "entry": entry,
        "offline": False,
        "modelsBusy": False,
        "missingPackages": (),
        "readError": None,
        "described": True,
    }
    return segmentButtonState(**{**values, **changes})


def test_a_running_installation_or_run_makes_the_button_its_cancel(bundled: dict[str, ModelEntry]) -> None:
    demo = bundled["gasa-demo-btcv"]
    assert _state(demo, installState=InstallState.RUNNING) == ButtonState(
        "Cancel installation", True, "Stop installing packages"
    )
    assert _state(demo, installState=InstallState.STOPPING).enabled is False
    assert _state(demo, installState=InstallState.SUCCEEDED).text == "Segment"  # a finished one is no longer busy
    download = _state(REMOTE, jobState=JobState.RUNNING, jobStage="download")
    assert (download.text, download.enabled, download.busy) == ("Cancel", True, True)
    assert "what was downloaded is kept" in download.tip
    assert _state(demo, jobState=JobState.RUNNING, jobStage="predict").tip.startswith("Stop the segmentation")
    assert _state(demo, jobState=JobState.CANCELLING) == ButtonState("Stopping...", False, "Stopping the engine")
    for finished in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        assert _state(demo, jobState=finished, jobStage="export") == ButtonState(
            "Segment", True, "Segment the input volume"
        )


def test_segment_says_what_is_missing_or_what_it_does_first(bundled: dict[str, ModelEntry]) -> None:
    demo = bundled["gasa-demo-btcv"]
    assert _state(demo, hasInput=False) == ButtonState("Segment", False, "Select an input volume")
    assert _state(None).tip == "Select a model, or import one"
    assert _state(REMOTE, modelsBusy=True) == ButtonState("Segment", False, "Wait for the model's download or import")
    assert _state(REMOTE, described=False) == ButtonState(
        "Segment", True, "Downloads Hospital liver model first (its licence is shown), then segments"
    )
    offline = _state(REMOTE, offline=True)
    assert not offline.enabled and "is not installed and Offline is ticked" in offline.tip
    assert (
        _state(demo, missingPackages=["torch", "nibabel"]).tip == "Installs torch, nibabel first (asks), then segments"
    )
    assert _state(demo, readError="model.json is malformed") == ButtonState(
        "Segment", False, "This model cannot be used: model.json is malformed"
    )
    assert _state(demo, described=False) == ButtonState("Segment", False, "Reading the model...")
    assert _state(demo, offline=True) == ButtonState("Segment", True, "Segment the input volume")


def test_catalogue_entries_that_cannot_run_say_why(bundled: dict[str, ModelEntry]) -> None:
    kits = _state(bundled["kits23-2nd-place"])
    assert not kits.enabled and kits.tip.endswith("; add its archive with 'Import model...'")
    unsupported = dataclasses.replace(REMOTE, unsupported="recipe 'x' is not implemented yet")
    assert _state(unsupported) == ButtonState(
        "Segment", False, "Hospital liver model cannot run yet: recipe 'x' is not implemented yet"
    )


def test_imported_folder_is_runnable_once_read(tmp_path: Path) -> None:
    from GASASegmenterLib.catalog import rememberImportedModel

    folder = tmp_path / "results"
    folder.mkdir()
    imported = rememberImportedModel(folder, {})
    assert _state(imported, described=False).tip == "Reading the model..."
    assert _state(imported, offline=True).enabled
