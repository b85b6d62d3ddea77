"""``python -m train.demo``: build the demo bundle ``Resources/models/gasa-demo-btcv`` (CPU, ~25 min)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from train.demo.make_demo import REPO_ROOT, DemoRecipe, make_demo_model


def main(argv: list[str] | None = None) -> int:
    defaults = DemoRecipe()
    parser = argparse.ArgumentParser(prog="python -m train.demo", description=__doc__)
    parser.add_argument("--target", type=Path, default=REPO_ROOT / "Resources" / "models" / "gasa-demo-btcv")
    parser.add_argument("--workdir", type=Path, help="nnU-Net folders go here (default: a new temporary folder)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="iterations per epoch")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing demo bundle")
    parser.add_argument("--resume", action="store_true", help="continue a training in --workdir (more epochs)")
    parser.add_argument("--note", help="free text stored in model.json training.note (e.g. why a run was cut)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    recipe = DemoRecipe(epochs=args.epochs, iterations=args.iterations)
    bundle = make_demo_model(
        args.target, workdir=args.workdir, recipe=recipe, overwrite=args.overwrite, resume=args.resume, note=args.note
    )
    print(f"demo bundle: {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
