"""The state file of a reproduction: what was asked for and which runs finished, with their metrics.

``<out>/<dataset>/state.json`` (versioned JSON, written atomically after every change) holds the
configuration the runs share (table, data set, schedule, plans, evaluation protocol) and one entry per run:
``started`` while it trains (a killed run stays so and is resumed from its last nnU-Net checkpoint), ``done``
with its evaluation (mean and per class Dice / NSD) once finished; then the exported bundles and their test-set
metrics. ``--continue`` skips the ``done`` runs; a configuration that differs from the recorded one (another
schedule, data set or test set) is refused, so one table never mixes them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from GASACore.io.atomic import atomic_output

__all__ = ["SCHEMA_VERSION", "STATE_NAME", "ReproductionState"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATE_NAME = "state.json"


@dataclass
class ReproductionState:
    """One table on one data set: its configuration, runs and skipped rows.

    Attributes:
        path: the state file.
        config: what every run shares (``table``, ``dataset_key``, ``dataset``, ``schedule``, ``plans_name``).
        runs: run name (``RunKey.name``) -> its record (``status``, ``network``, ``fold``, ``seed``, metrics).
        skipped: network -> why its row was not run in the last call.
        classes: the evaluation classes (name, NSD tolerance) of the finished runs.
        bundles: ``network/seed_S`` -> the model bundle exported from its folds (``--export``, or a test set).
        tests: ``network/seed_S`` -> the metrics of its bundle on the held-out test set (:mod:`.testset`).
    """

    path: Path
    config: dict[str, Any]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    classes: list[dict[str, Any]] = field(default_factory=list)
    bundles: dict[str, str] = field(default_factory=dict)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, config: dict[str, Any], *, resume: bool) -> ReproductionState:
        """The state at ``path`` for ``config``: a new one, or (``resume``) the recorded one.

        Raises:
            ValueError: a state with runs exists and ``resume`` is off, or the recorded configuration differs
                from ``config`` (the message names the differing fields).
        """
        if not path.is_file():
            return cls(path, dict(config))
        recorded = cls.read(path)
        if not resume and recorded.runs:
            raise ValueError(
                f"{path} already records {len(recorded.runs)} run(s): pass --continue to resume them, or choose "
                "another --out"
            )
        differing = sorted(k for k in config if recorded.config.get(k) != config[k])
        if differing:
            was = {k: recorded.config.get(k) for k in differing}
            now = {k: config[k] for k in differing}
            raise ValueError(f"{path} was written for {was}, this call asks for {now}: use another --out")
        return recorded

    @classmethod
    def read(cls, path: Path) -> ReproductionState:
        """Read a state file.

        Raises:
            ValueError: not a state file of this schema version.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} must be a reproduction state file (JSON), got: {err}") from err
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            version = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path} must have schema_version {SCHEMA_VERSION}, got {version!r}")
        return cls(
            path,
            data["config"],
            data.get("runs", {}),
            data.get("skipped", {}),
            data.get("classes", []),
            data.get("bundles", {}),
            data.get("tests", {}),
        )

    def is_done(self, name: str) -> bool:
        """Whether the run finished and was evaluated."""
        return self.runs.get(name, {}).get("status") == "done"

    def was_started(self, name: str) -> bool:
        """Whether a run of that name began before (finished or not): it resumes from its checkpoint."""
        return name in self.runs

    def mark_started(self, name: str, record: dict[str, Any]) -> None:
        """Record that a run began (kept if it is killed) and save."""
        self.runs[name] = {**self.runs.get(name, {}), **record, "status": "started", "started": _now()}
        self.save()

    def mark_done(self, name: str, record: dict[str, Any]) -> None:
        """Record a finished, evaluated run and save."""
        self.runs[name] = {**self.runs.get(name, {}), **record, "status": "done", "finished": _now()}
        self.save()

    def done_runs(self) -> dict[str, dict[str, Any]]:
        """The finished runs by name."""
        return {name: run for name, run in self.runs.items() if run.get("status") == "done"}

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config,
            "runs": self.runs,
            "skipped": self.skipped,
            "classes": self.classes,
            "bundles": self.bundles,
            "tests": self.tests,
        }

    def save(self) -> None:
        """Write the state file atomically."""
        with atomic_output(self.path, overwrite=True) as temporary:
            temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        logger.debug("saved %s", self.path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
