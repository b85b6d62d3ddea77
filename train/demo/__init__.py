"""The demo model recipe: ``python -m train.demo`` (see ``train.demo.make_demo``)."""

from __future__ import annotations

from train.demo.make_demo import DemoRecipe, make_demo_model

__all__ = ["DemoRecipe", "make_demo_model"]
