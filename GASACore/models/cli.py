"""``gasa-models``: list, fetch, import, verify, remove and locate catalogue models.

Usage::

    gasa-models list [--json]
    gasa-models fetch ID[@VERSION] [--version V] [--progress json|bar|none]
    gasa-models import PATH_OR_ZIP [--id ID | --fallback-id ID] [--version V] [--json]
    gasa-models verify ID[@VERSION]
    gasa-models remove ID[@VERSION]
    gasa-models path ID[@VERSION] [--offline]

The catalogue is ``Resources/models/catalog.json`` merged with the files of ``GASA_CATALOG``; models are
installed under ``$GASA_HOME/models/ID/VERSION``. Exit code 0 on success, 1 on error (one line saying what
was expected and what was given), 2 for a usage error, 130 when cancelled (SIGTERM, SIGINT). Torch-free.
With ``GASA_ENGINE_NEW_SESSION=1`` (:data:`GASACore.events.NEW_SESSION_ENV`, set by the 3D Slicer module) it
first leads a session of its own and writes a ``start`` event, as ``gasa-segment`` does, so that a program
can stop a download and everything behind a launcher.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence

from GASACore.errors import Cancelled, GASAError
from GASACore.events import ErrorEvent
from GASACore.interrupt import lead_new_session
from GASACore.models.catalog import load_catalog
from GASACore.models.download import DownloadPolicy
from GASACore.models.entry import CatalogEntry, ModelFormat, parse_spec
from GASACore.models.fetch import fetch_entry, import_model, installed_for, remove_model
from GASACore.models.install import installed_models, verify_install
from GASACore.models.resolve import list_models, resolve_model
from GASACore.progress import ProgressMode, make_sink

__all__ = ["build_parser", "main"]

logger = logging.getLogger("gasa-models")


def build_parser() -> argparse.ArgumentParser:
    """The ``gasa-models`` parser (one sub-command per action)."""
    parser = argparse.ArgumentParser(
        prog="gasa-models",
        description=(
            "Models of the GASASegmenter catalogue (Resources/models/catalog.json and the files in GASA_CATALOG), "
            "downloaded and checked (size, SHA-256, archive safety) into $GASA_HOME/models/ID/VERSION."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every catalogue model: installed or not, size, licence")
    listing.add_argument("--json", action="store_true", help="one JSON array on stdout")
    fetch = commands.add_parser("fetch", help="download, check and install a model")
    fetch.add_argument("model", metavar="ID[@VERSION]")
    fetch.add_argument("--version", default=None, help="the version (default: the newest in the catalogue)")
    fetch.add_argument("--progress", choices=ProgressMode.values(), default=ProgressMode.AUTO.value)
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a try fails (30)")
    fetch.add_argument("--tries", type=int, default=3, help="tries per mirror (3)")
    imported = commands.add_parser("import", help="install an archive or folder brought by hand (offline)")
    imported.add_argument("source", metavar="PATH_OR_ZIP")
    imported.add_argument(
        "--id", dest="model_id", default=None, help="catalogue id (found from the archive when left out)"
    )
    imported.add_argument("--version", default=None)
    imported.add_argument(
        "--fallback-id", default=None, metavar="ID", help="the id of a model the catalogue does not know (else refused)"
    )
    imported.add_argument("--json", action="store_true", help="print the install as one JSON object")
    for name, text in (("verify", "re-hash an installed model"), ("remove", "delete an installed model")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("model", metavar="ID[@VERSION]")
        sub.add_argument("--version", default=None)
    path = commands.add_parser("path", help="print the folder the engine loads (fetching it unless --offline)")
    path.add_argument("model", metavar="ID[@VERSION]")
    path.add_argument("--version", default=None)
    path.add_argument("--offline", action="store_true", help="never download; fail when not installed")
    return parser


def _spec(args: argparse.Namespace) -> str:
    model_id, version = parse_spec(args.model)
    version = args.version or version
    return f"{model_id}@{version}" if version else model_id


def _size(count: int | None) -> str:
    return "-" if count is None else f"{count / 1e6:,.0f} MB"


def _list(args: argparse.Namespace) -> int:
    statuses = list_models()
    if args.json:
        print(json.dumps([status.to_json() for status in statuses], indent=2))
        return 0
    rows = [("ID", "VERSION", "STATE", "SIZE", "LICENCE", "SHA-256", "TITLE")]
    for status in statuses:
        entry = status.entry
        pin = "bundled" if entry.bundled else ("-" if entry.format is ModelFormat.COMPOSITE else "pinned")
        if not entry.pinned:
            pin = "unpinned" if status.installed is None else "recorded"
        licence = entry.license.summary() if entry.license else "-"
        rows.append((entry.id, entry.version, status.state, _size(entry.size), licence, pin, entry.title))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:6], widths, strict=True)) + "  " + row[6])
    unsupported = [s.entry.spec for s in statuses if s.entry.unsupported_reason()]
    if unsupported:
        print(f"\nnot runnable yet (the engine refuses them): {', '.join(unsupported)}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    entry = catalog.get(_spec(args))
    sink = make_sink(args.progress)
    if entry.license is not None and entry.license.commercial_use is False:
        print(f"gasa-models: note: {entry.spec} is licensed {entry.license.summary()}", file=sys.stderr)
    policy = DownloadPolicy(timeout=args.timeout, tries=args.tries)
    try:
        installs = fetch_entry(catalog, entry, progress=sink.emit, policy=policy)
    finally:
        sink.close()
    for installed in installs:
        print(f"{installed.spec}: {installed.model_path}")
    reason = entry.unsupported_reason()
    if reason:
        print(f"gasa-models: note: the engine cannot run {entry.spec} yet: {reason}", file=sys.stderr)
    return 0


def _entry(args: argparse.Namespace) -> CatalogEntry:
    return load_catalog().get(_spec(args))


def _verify(args: argparse.Namespace) -> int:
    entry = _entry(args)
    installed = installed_for(entry)
    if installed is None:
        raise GASAError(f"{entry.spec} is not installed; run `gasa-models fetch {entry.id}`")
    verify_install(installed)
    print(f"{installed.spec}: {len(installed.files)} files match their SHA-256 checksums")
    return 0


def _remove(args: argparse.Namespace) -> int:
    model_id, version = parse_spec(args.model)
    removed = remove_model(model_id, args.version or version)
    if not removed:
        known = ", ".join(m.spec for m in installed_models()) or "none"
        raise GASAError(f"{args.model} is not installed (installed: {known})")
    print("removed " + ", ".join(removed))
    return 0


def _import(args: argparse.Namespace) -> int:
    installed = import_model(
        args.source, load_catalog(), model_id=args.model_id, version=args.version, fallback_id=args.fallback_id
    )
    print(json.dumps(installed.to_json()) if args.json else f"{installed.spec}: {installed.model_path}")
    return 0


def _path(args: argparse.Namespace) -> int:
    print(resolve_model(_spec(args), offline=args.offline, runnable=False))
    return 0


_COMMANDS = {"list": _list, "fetch": _fetch, "import": _import, "verify": _verify, "remove": _remove, "path": _path}


def _cancel_on_signal(signum: int, _frame: object) -> None:
    raise Cancelled(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gasa-models``; returns the process exit code."""
    lead_new_session()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    previous_handler = signal.signal(signal.SIGTERM, _cancel_on_signal)  # restored below: main() runs in-process too
    json_progress = getattr(args, "progress", None) == ProgressMode.JSON
    try:
        return _COMMANDS[args.command](args)
    except (Cancelled, KeyboardInterrupt):
        print("gasa-models: cancelled (a partial download is kept and resumed next time)", file=sys.stderr)
        return 130
    except (GASAError, OSError, ValueError) as err:
        if json_progress:
            print(ErrorEvent(str(err)).to_json_line(), flush=True)
        print(f"gasa-models: error: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
