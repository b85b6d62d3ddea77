"""The shipped catalogue fits its schema; GASA_CATALOG files merge and override; broken files are named;
versions, ids and the label mappings (our label tables, SNOMED CT)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from catalog_support import remote_entry, write_catalog

from GASACore.labels import BTCV_LABELS
from GASACore.models import (
    CatalogError,
    ModelFormat,
    OfflineError,
    Version,
    default_catalog_path,
    load_catalog,
    load_model_spec,
    resolve_model,
    schema_path,
    validate,
)
from GASACore.models.fetch import needed_entries

REPO = Path(__file__).resolve().parents[3]


def test_the_catalogue_is_found_next_to_the_package_and_fits_its_schema() -> None:
    assert default_catalog_path() == REPO / "Resources" / "models" / "catalog.json"
    data = json.loads(default_catalog_path().read_text(encoding="utf-8"))
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    assert validate(data, schema) == []
    catalog = load_catalog()
    demo = catalog.get("gasa-demo-btcv")
    assert demo.bundled and demo.path == REPO / "Resources" / "models" / "gasa-demo-btcv"
    model_json = demo.path / "model.json"
    assert hashlib.sha256(model_json.read_bytes()).hexdigest() == demo.path_sha256
    assert resolve_model("gasa-demo-btcv") == demo.path


def test_the_published_models_carry_licence_size_and_an_honest_pin() -> None:
    catalog = load_catalog()
    organs = catalog.get("totalseg-organs")
    assert organs.format is ModelFormat.NNUNET and organs.size == 233_742_255 and organs.sha256 is None
    assert not organs.pinned and organs.license.name == "Apache-2.0" and organs.license.commercial_use
    assert organs.urls == (
        "https://github.com/wasserth/TotalSegmentator/releases/download/v2.0.0-weights/"
        "Dataset291_TotalSegmentator_part1_organs_1559subj.zip",
    )
    assert organs.recipe.name == "totalsegmentator" and organs.recipe.mirroring is False
    assert organs.recipe.step_size == 0.8 and organs.recipe.canonical_orientation
    assert catalog.get("totalseg-kidney-cysts").recipe.crop["margin_mm"] == 20
    assert catalog.get("kits23-2nd-place").license.commercial_use is False
    abdomen = catalog.get("totalseg-abdomen")
    assert [part.spec for part in catalog.parts_of(abdomen)] == ["totalseg-organs@2.0.0", "totalseg-cardiac@2.0.0"]
    for entry in catalog:
        assert entry.bundled or (entry.license is not None and entry.citation), entry.spec


def test_the_abdomen_composite_maps_every_btcv_organ_with_its_snomed_code() -> None:
    abdomen = load_catalog().get("totalseg-abdomen")
    mapped = {label.maps_to[1]: label for label in abdomen.labels if label.maps_to and label.maps_to[0] == "btcv"}
    assert sorted(mapped) == [label.value for label in BTCV_LABELS]
    for btcv in BTCV_LABELS:
        ours = mapped[btcv.value]
        assert ours.name == btcv.name and ours.terminology == btcv.terminology
    assert mapped[8].value == 52 and mapped[8].source_name == "aorta"  # TotalSegmentator's 'total' numbering
    cysts = load_catalog().get("totalseg-kidney-cysts").labels
    assert [(c.name, c.terminology.type.value, c.terminology.modifier.meaning) for c in cysts] == [
        ("left kidney cyst", "367643001", "Left"),
        ("right kidney cyst", "367643001", "Right"),
    ]


@pytest.mark.parametrize(
    ("spec", "first_missing"),
    [
        ("totalseg-organs", "totalseg-organs@2.0.0"),
        ("totalseg-abdomen", "totalseg-organs@2.0.0"),
        ("totalseg-kidney-cysts@2.5.0", "totalseg-kidney-cysts@2.5.0"),
    ],
)
def test_totalsegmentator_entries_run_and_say_plainly_what_is_not_installed(spec: str, first_missing: str) -> None:
    entry = load_catalog().get(spec)
    assert entry.unsupported_reason() is None, "TotalSegmentator's recipe and composites are implemented"
    with pytest.raises(OfflineError, match=f"model {first_missing} is not installed and --offline forbids"):
        load_model_spec(spec, offline=True)


def test_the_kidney_cyst_model_needs_its_crop_model_and_the_abdomen_its_parts() -> None:
    catalog = load_catalog()
    cysts = catalog.get("totalseg-kidney-cysts")
    assert cysts.recipe.crop["model"] == "totalseg-total-6mm" and cysts.recipe.step_size == 0.5
    six = catalog.get("totalseg-total-6mm")
    assert six.size == 134_827_240 and six.sha256 is None and six.folder.startswith("Dataset298_TotalSegmentator")
    assert {label.source_name for label in six.labels} >= set(cysts.recipe.crop["structures"])
    assert [e.spec for e in needed_entries(catalog, cysts)] == ["totalseg-total-6mm@2.0.0", cysts.spec]
    assert [e.id for e in needed_entries(catalog, catalog.get("totalseg-abdomen"))] == [
        "totalseg-organs",
        "totalseg-cardiac",
    ]


def test_gasa_catalog_merges_and_overrides_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"x" * 100
    first = write_catalog(
        tmp_path / "a.json",
        remote_entry("site-a", "http://127.0.0.1:1/a.zip", data),
        remote_entry("totalseg-organs", "http://127.0.0.1:1/o.zip", data, title="hospital mirror", version="2.0.0"),
    )
    newer = remote_entry("site-a", "http://127.0.0.1:1/a2.zip", data, version="1.1.0")
    second = write_catalog(tmp_path / "b.json", newer, {**newer, "version": "1.0.5"})
    monkeypatch.setenv("GASA_CATALOG", os.pathsep.join([str(first), "", str(second)]))
    catalog = load_catalog()
    assert catalog.files == (default_catalog_path(), first, second)
    assert catalog.get("totalseg-organs").title == "hospital mirror", "a later file overrides a bundled entry"
    assert [e.version for e in catalog.versions("site-a")] == ["1.1.0", "1.0.5"], "b.json replaced a.json's site-a"
    assert catalog.get("site-a").version == "1.1.0" and catalog.get("site-a@1.0.5").urls == (
        "http://127.0.0.1:1/a2.zip",
    )
    assert "gasa-demo-btcv" in catalog and "site-a@9.9.9" not in catalog
    with pytest.raises(CatalogError, match=r"has no version 2\.0\.0 of 'site-a'; it has 1\.1\.0, 1\.0\.5"):
        catalog.get("site-a", "2.0.0")
    with pytest.raises(CatalogError, match=r"no model 'nope' in the catalogue.*known ids: gasa-demo-btcv"):
        catalog.get("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "expected JSON"),
        ('{"schema_version": 1, "models": [{"id": "Bad Id"}]}', r"does not fit its schema: \$.models\[0\]"),
        ('{"schema_version": 1, "models": [{"id": "x", "version": "1.0", "title": "t", "path": "p", '
         '"sha256": "", "labelSet": "btcv"}]}', "expected to match"),
    ],
)  # fmt: skip
def test_a_broken_institution_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    broken = tmp_path / "hospital.json"
    broken.write_text(text, encoding="utf-8")
    monkeypatch.setenv("GASA_CATALOG", str(broken))
    with pytest.raises(CatalogError, match=f"model catalogue {broken}.*{message}"):
        load_catalog()
    monkeypatch.setenv("GASA_CATALOG", str(tmp_path / "absent.json"))
    with pytest.raises(CatalogError, match=r"absent.json does not exist \(named by GASA_CATALOG"):
        load_catalog()


def test_one_id_and_version_twice_in_a_file_and_unknown_parts_are_refused(tmp_path: Path) -> None:
    entry = remote_entry("twice", "http://127.0.0.1:1/a.zip", b"data")
    with pytest.raises(CatalogError, match=r"lists twice@1\.0\.0 more than once"):
        load_catalog([write_catalog(tmp_path / "a.json", entry, entry)])
    parts = [{"id": "twice"}, {"id": "gone"}]
    composite = {**entry, "id": "combo", "format": "composite", "size": None, "parts": parts}
    del composite["url"]
    with pytest.raises(CatalogError, match="no model 'gone'"):
        load_catalog([write_catalog(tmp_path / "b.json", entry, composite)])


def test_schema_validation_reports_every_problem_with_its_path() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    bad = {"schema_version": 2, "models": [{"id": "Bad Id", "title": "", "path": "/abs", "sha256": "xyz"}]}
    problems = "\n".join(validate(bad, schema))
    for expected in ("$.schema_version: expected 2", "$.models[0].id", "missing 'labelSet'", "$.models[0].sha256"):
        assert expected.replace("expected 2", "expected 1") in problems, problems
    remote = remote_entry("ok", "ftp://host/a.zip", b"x", sha256="ABC")
    problems = "\n".join(validate({"schema_version": 1, "models": [remote]}, schema))
    assert "$.models[0].url" in problems and "$.models[0].sha256" in problems


def test_versions_order_as_semver() -> None:
    texts = ["1.0.0", "1.0.0-rc.1", "0.9.12", "1.10.0", "1.2.0"]
    ordered = sorted(texts, key=Version.parse)
    assert ordered == ["0.9.12", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0"]
    with pytest.raises(ValueError, match=r"semantic version such as 1\.0\.0, got '1\.0'"):
        Version.parse("1.0")
