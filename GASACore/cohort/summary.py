"""What happened to each case of a batch or cohort run, and the one summary (CSV and JSON) that records it.

Every rank keeps a :class:`CaseRecord` per case of its shard; rank 0 gathers them and writes
``OUT_DIR/summary.json`` and ``OUT_DIR/summary.csv`` atomically (:func:`write_summary`), also when cases
failed. :func:`output_complete` is the ``--resume`` rule for a finished case.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from GASACore.enums import StrEnum
from GASACore.io.atomic import atomic_output

__all__ = [
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "SUMMARY_SCHEMA_VERSION",
    "CaseRecord",
    "CaseStatus",
    "output_complete",
    "summary_counts",
    "write_summary",
]

logger = logging.getLogger(__name__)

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_SCHEMA_VERSION = 1


class CaseStatus(StrEnum):
    """How a case ended in this run."""

    SEGMENTED = "segmented"  #: its label map was written by this run
    SKIPPED = "skipped"  #: ``--resume``: a complete output was already there
    FAILED = "failed"  #: an error; ``error`` says which


@dataclass(frozen=True)
class CaseRecord:
    """One row of the summary.

    Attributes:
        case: the case name (outputs are named after it).
        status: segmented, skipped or failed.
        seconds: wall time this run spent on the case (read, segment, write), 0 for a skipped one.
        device: where it ran (``"cpu"``, ``"cuda:1"``); for a failed case the rank's device.
        rank: the rank that handled it (0 without torchrun).
        output: the label map path.
        error: the error message of a failed case, else empty.
        index: position of the case in the sorted input list (the summary's row order).
    """

    case: str
    status: CaseStatus
    seconds: float
    device: str
    rank: int
    output: str
    error: str = ""
    index: int = 0

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["status"] = str(self.status)
        del row["index"]
        return row


_COLUMNS = [f.name for f in fields(CaseRecord) if f.name != "index"]


def output_complete(path: Path) -> bool:
    """Whether ``path`` is a finished label map, so that ``--resume`` may skip its case.

    Outputs are written atomically (a temporary ``.partial-*`` sibling renamed into place), so a file under
    the final name was complete when it appeared; a leftover temporary never counts. The header is read as
    well, so that an empty or foreign file is not taken for a result.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        logger.warning("%s exists but its header cannot be read (%s)", path, str(err).strip().splitlines()[-1:])
        return False
    return reader.GetDimension() == 3 and all(int(n) > 0 for n in reader.GetSize())


def summary_counts(records: Iterable[CaseRecord]) -> dict[str, int]:
    """Cases per status, every status present: ``{"segmented": 3, "skipped": 1, "failed": 0}``."""
    counts = dict.fromkeys(CaseStatus.values(), 0)
    for record in records:
        counts[str(record.status)] += 1
    return counts


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_summary(folder: Path, records: Iterable[CaseRecord], run: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.csv`` into ``folder`` atomically, replacing the last run's.

    The CSV has one row per case (columns ``case, status, seconds, device, rank, output, error``), in input
    order. The JSON holds the same rows under ``cases`` next to ``schema_version``, ``counts`` (per status)
    and the ``run`` fields (input, model, world size, ...).

    Returns:
        The JSON and CSV paths.
    """
    ordered = sorted(records, key=lambda r: (r.index, r.case))
    rows = [r.to_dict() for r in ordered]
    document = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        **dict(run),
        "counts": summary_counts(ordered),
        "cases": rows,
    }
    json_path, csv_path = Path(folder) / SUMMARY_JSON, Path(folder) / SUMMARY_CSV
    with atomic_output(json_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    with atomic_output(csv_path, overwrite=True) as tmp:
        tmp.write_text(_csv_text(rows), encoding="utf-8")
    logger.info("summary of %d case(s) written to %s and %s", len(rows), json_path, csv_path)
    return json_path, csv_path
