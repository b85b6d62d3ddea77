"""What the model row shows and asks, from GASACore's real catalogue (the bundled one and a site catalogue).

The selector's titles, the line under it, why Segment is refused, the licence confirmation before a first
download, the choice of a model across catalogue versions, the id of an archive imported by hand and the
download's stage label. The entries are real catalogue entries read by GASACore (``GASA_CATALOG`` names a
site catalogue written with the catalogue tests' builders); nothing here starts a process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from GASASegmenterLib.catalog import (
    ModelEntry,
    availabilityText,
    findModel,
    importIdFor,
    licenceAcceptText,
    licenceQuestion,
    listModels,
    needsLicenceAcceptance,
    rememberImportedModel,
    whyNotRunnable,
)
from GASASegmenterLib.modelDownload import downloadText, fetchCommand, importCommand, modelsCommand

_MODELS_TESTS = Path(__file__).resolve().parents[1] / "GASACore" / "models"
if str(_MODELS_TESTS) not in sys.path:
    sys.path.append(str(_MODELS_TESTS))

from catalog_support import remote_entry, write_catalog  # noqa: E402 - the catalogue tests' builders, reused

SIZE = 233_742_255  # bytes: "233 MB" would round to 234
RESEARCH = {"name": "CC-BY-NC-SA-4.0", "commercial_use": False, "note": "KiTS23 data terms", "url": "https://x.org/l"}
UNKNOWN = {"name": "see the record", "commercial_use": None}


@pytest.fixture()
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, ModelEntry]:
    """The panel's list with a site catalogue of three remote entries (two versions of one id), by key."""
    monkeypatch.setenv("GASA_HOME", str(tmp_path / "home"))
    data = b"not downloaded by these tests"
    entries = [
        remote_entry("open", "https://models.example.org/open.zip", data, size=SIZE),
        remote_entry("open", "https://models.example.org/open2.zip", data, size=SIZE, version="1.10.0"),
        remote_entry("research", "https://zenodo.org/r.zip", data, pinned=False, size=SIZE, license=RESEARCH),
        remote_entry("unknown", ["https://a.example.org/u.zip", "https://b.example.org/u.zip"], data, license=UNKNOWN),
    ]
    monkeypatch.setenv("GASA_CATALOG", str(write_catalog(tmp_path / "site.json", *entries)))
    return {entry.key: entry for entry in listModels({})}


def test_titles_say_what_a_download_means(models: dict[str, ModelEntry]) -> None:
    demo = next(entry for entry in models.values() if entry.id == "gasa-demo-btcv")
    assert (demo.state, demo.available, demo.title) == ("bundled", True, "GASA-UNet demo: 13 abdominal organs (BTCV)")
    assert (availabilityText(demo), whyNotRunnable(demo), whyNotRunnable(demo, offline=True)) == ("", None, None)
    assert models["open@1.0.0"].title == "test model open (download - 234 MB - Apache-2.0)"
    research = models["research@1.0.0"]
    assert research.title == "test model research (download - 234 MB - CC-BY-NC-SA-4.0 (research only) (unpinned))"
    assert models["unknown@1.0.0"].title.endswith("(download - 0 MB - see the record (commercial use: unknown))")
    assert availabilityText(research).startswith(
        "Not installed: download - 234 MB - CC-BY-NC-SA-4.0 (research only) (unpinned). Segment downloads it first"
    )


def test_segment_downloads_first_unless_offline_or_the_entry_is_import_only(models: dict[str, ModelEntry]) -> None:
    research = models["research@1.0.0"]
    assert research.downloadable and whyNotRunnable(research) is None
    assert whyNotRunnable(research, offline=True) == (
        "test model research is not installed and Offline is ticked: untick it to download the model, or add its "
        "archive with 'Import model...'"
    )
    # the bundled catalogue's KiTS23 entry has no download address: the user downloads it by hand and imports it
    kits = next(entry for entry in models.values() if entry.id.startswith("kits23"))
    assert kits.state == "import only" and not kits.downloadable and not kits.available
    assert whyNotRunnable(kits).endswith("; add its archive with 'Import model...'")
    assert kits.homepage and availabilityText(kits).startswith(
        f"Not installed, and it has no download address: download its archive from {kits.homepage}"
    )
    assert "(research only)" in kits.title and "(unpinned)" in kits.title


def test_a_licence_that_forbids_or_does_not_allow_commercial_use_must_be_accepted(
    models: dict[str, ModelEntry],
) -> None:
    research, open_, unknown = models["research@1.0.0"], models["open@1.0.0"], models["unknown@1.0.0"]
    assert [needsLicenceAcceptance(e) for e in (research, open_, unknown)] == [True, False, True]
    assert licenceAcceptText(research) == licenceAcceptText(unknown) == "Accept the licence and download"
    assert licenceAcceptText(open_) == "Download"
    assert licenceQuestion(research).splitlines() == [
        'Download "test model research" (234 MB) from zenodo.org?',
        "",
        "Licence: CC-BY-NC-SA-4.0 (research only). KiTS23 data terms https://x.org/l",
        "This licence does not allow commercial use: you may use the model for research only.",
        "The publisher gives no checksum: the SHA-256 of this first download is recorded and checked at every "
        "later use (unpinned).",
        "Please cite: GASASegmenter tests",
    ]
    assert licenceQuestion(open_).splitlines()[2:4] == [
        "Licence: Apache-2.0.",
        "The download is checked (size and SHA-256) before it is installed.",
    ]
    unknownText = licenceQuestion(unknown)
    assert unknownText.startswith('Download "test model unknown" (0 MB) from a.example.org?')
    assert "does not say whether commercial use is allowed: read the licence first" in unknownText


def test_a_saved_choice_finds_its_model_or_the_newest_version_of_its_id(
    models: dict[str, ModelEntry], tmp_path: Path
) -> None:
    entries = list(models.values())
    assert findModel(entries, "open@1.0.0") is models["open@1.0.0"]
    assert findModel(entries, "open@0.9.0") is models["open@1.10.0"]  # semver: 1.10.0 is newer than 1.0.0
    assert findModel(entries, "gone@1.0.0") is None
    folder = tmp_path / "my model"
    folder.mkdir()
    imported = rememberImportedModel(folder, settings := {})
    assert imported.title == "my model (imported)" and imported.key == f"imported:{folder.resolve()}"
    withImport = [*entries, *listModels(settings)[len(entries) :]]
    assert findModel(withImport, imported.key) == imported
    assert findModel(withImport, "imported:/elsewhere/open") is None  # never mistaken for the catalogue id


def test_archive_ids_and_the_engine_commands() -> None:
    assert importIdFor("/data/My Liver Model v2.zip") == "my-liver-model-v2"
    assert importIdFor("Dataset291_TotalSegmentator_part1.ZIP") == "dataset291_totalsegmentator_part1"
    assert importIdFor("__.zip") == "imported-model"
    assert downloadText(12_345_678, SIZE) == "download: 12.3 of 233.7 MB (5%)"
    assert downloadText(5_000_000, None) == "download: 5.0 MB"
    engine = ["/opt/Slicer/bin/PythonSlicer", "-m", "GASACore.cli"]
    models = modelsCommand(engine)
    assert models == ["/opt/Slicer/bin/PythonSlicer", "-m", "GASACore.models.cli"]
    assert fetchCommand(models, "open@1.0.0")[3:] == ["fetch", "open@1.0.0", "--progress", "json"]
    imported = importCommand(models, Path("/u/a b.zip"), "a-b")
    assert imported[3:] == ["import", "/u/a b.zip", "--fallback-id", "a-b", "--json"]
    with pytest.raises(ValueError, match=r"must end with '-m GASACore\.cli', got \['gasa-segment'\]"):
        modelsCommand(["gasa-segment"])
