"""``python -m train.demo``: build the demo bundle ``Resources/models/gasa-demo-btcv`` (CPU, ~45-70 min).

With the default target it also rewrites what describes the shipped bundle: the self-test's expectation
table (``GASASegmenter/Resources/SelfTest/expectedOrgans.json``) and the bundle's catalogue entry
(``Resources/models/catalog.json``: version, description, ``model.json`` SHA-256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

from train.demo.make_demo import DEMO_VERSION, REPO_ROOT, DemoRecipe, make_demo_model
from train.demo.selftest_table import write_expectation_table

DEFAULT_TARGET = REPO_ROOT / "Resources" / "models" / "gasa-demo-btcv"
SELFTEST_TABLE = REPO_ROOT / "GASASegmenter" / "Resources" / "SelfTest" / "expectedOrgans.json"
CATALOG = REPO_ROOT / "Resources" / "models" / "catalog.json"
CATALOG_DESCRIPTION = (
    "Demonstration model, not for clinical use: a small GASA-UNet trained on 2 CPU cores on one CT (the "
    "TotalSegmentator example scan, labels from TotalSegmentator's model mapped to the 13 BTCV organs), with "
    "contrast-phase and field-of-view augmentation. High Dice on its training CT; on new scans expect misses "
    "(see its model.json and the README)."
)


def update_catalog_entry(bundle: Path, catalog: Path = CATALOG, model_id: str = "gasa-demo-btcv") -> None:
    """Point the bundled entry at this bundle: its version, description and ``model.json`` SHA-256."""
    data = json.loads(catalog.read_text(encoding="utf-8"))
    entry = next(e for e in data["models"] if e["id"] == model_id)
    entry["sha256"] = hashlib.sha256((bundle / "model.json").read_bytes()).hexdigest()
    entry["version"] = DEMO_VERSION
    entry["description"] = CATALOG_DESCRIPTION
    catalog.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    defaults = DemoRecipe()
    parser = argparse.ArgumentParser(prog="python -m train.demo", description=__doc__)
    parser.add_argument("--target", type=Path, default=DEFAULT_TARGET)
    parser.add_argument("--workdir", type=Path, help="nnU-Net folders go here (default: a new temporary folder)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="iterations per epoch")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing demo bundle")
    parser.add_argument("--resume", action="store_true", help="continue a training in --workdir (more epochs)")
    parser.add_argument("--export-only", action="store_true", help="export the finished training in --workdir")
    parser.add_argument("--note", help="free text stored in model.json training.note (e.g. why a run was cut)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recipe = DemoRecipe(epochs=args.epochs, iterations=args.iterations)
    bundle = make_demo_model(
        args.target,
        workdir=args.workdir,
        recipe=recipe,
        overwrite=args.overwrite,
        resume=args.resume,
        export_only=args.export_only,
        note=args.note,
    )
    if args.target.resolve() == DEFAULT_TARGET.resolve():
        write_expectation_table(bundle, SELFTEST_TABLE)
        update_catalog_entry(bundle)
        logging.getLogger(__name__).info("updated %s and %s", SELFTEST_TABLE, CATALOG)
    print(f"demo bundle: {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
