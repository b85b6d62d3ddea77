"""Streaming download of a model archive: resume, timeouts, retries, mirrors, size and SHA-256 checks.

Torch-free; only the standard library (``urllib``), so proxies come from the environment as for any
Python program: ``https_proxy`` / ``http_proxy`` / ``no_proxy`` (``urllib.request.getproxies``).

The archive grows in a ``.part`` file in the install area. An *interrupted* download (connection lost,
timed out, cancelled) keeps its ``.part`` and the next attempt asks for the rest with an HTTP ``Range``
request (``If-Range`` with the server's ``ETag`` or ``Last-Modified`` recorded in ``<part>.json``); a server
that ignores ``Range`` answers 200 and the download restarts from zero. A *refused* download (more bytes
than the catalogue's ``size``, a wrong total size, a SHA-256 that differs) deletes its ``.part``: nothing of
a file that failed its checks is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, BinaryIO

from GASACore.errors import Cancelled, ModelError
from GASACore.events import DownloadEvent

__all__ = ["ChecksumError", "DownloadError", "DownloadPolicy", "ProgressCallback", "download"]

logger = logging.getLogger(__name__)

#: Receives download progress events.
ProgressCallback = Callable[[DownloadEvent], None]
#: A ``threading.Event`` that gets set, or a callable returning ``True``, to stop.
CancelSignal = Callable[[], bool] | threading.Event

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(ModelError):
    """The archive could not be downloaded (network, HTTP error, timeout); a partial file is kept for resuming."""


class ChecksumError(ModelError):
    """The downloaded archive has the wrong size or SHA-256: refused and deleted."""


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard a download tries.

    Attributes:
        timeout: seconds without a byte (connecting or reading) before an attempt fails.
        tries: attempts per mirror (each resumes what the previous one got).
        backoff: seconds before the second attempt, doubled before each later one.
        chunk_size: bytes read per call.
    """

    timeout: float = 30.0
    tries: int = 3
    backoff: float = 1.0
    chunk_size: int = 1 << 20

    def __post_init__(self) -> None:
        if not self.timeout > 0 or self.tries < 1 or self.backoff < 0 or self.chunk_size < 1:
            raise ValueError(f"download policy needs timeout > 0, tries >= 1, backoff >= 0, got {self!r}")


class _Attempt(Exception):
    """One attempt failed; ``retry`` says whether another attempt at the same URL may succeed."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


def _cancelled(cancel: CancelSignal | None) -> bool:
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if callable(is_set) else cancel())  # type: ignore[operator]


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_validator(part: Path, url: str) -> str | None:
    """The ``ETag`` / ``Last-Modified`` recorded when ``part`` was started from ``url``."""
    try:
        meta = json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("validator") if isinstance(meta, dict) and meta.get("url") == url else None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


class _Transfer:
    """The state of one archive's download across attempts and mirrors."""

    def __init__(self, part: Path, size: int | None, model: str, progress: ProgressCallback | None) -> None:
        self.part, self.size, self.model, self.progress = part, size, model, progress
        self._last_report = (0.0, -1)

    def have(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def report(self, received: int, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        last_time, last_bytes = self._last_report
        step = max((self.size or 0) // 200, 1 << 20)
        if force or received - last_bytes >= step or now - last_time >= 0.5:
            self._last_report = (now, received)
            self.progress(DownloadEvent(self.model, received, self.size))

    def request(self, url: str, offset: int) -> urllib.request.Request:
        request = urllib.request.Request(url, headers={"User-Agent": "GASASegmenter", "Accept-Encoding": "identity"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
            validator = _read_validator(self.part, url)
            if validator:
                request.add_header("If-Range", validator)
        return request


def _declared_total(status: int, headers: Any) -> int | None:
    """The whole file's size as the server states it (``Content-Range``'s total, or a 200's ``Content-Length``)."""
    text = headers.get("Content-Range", "").rpartition("/")[2] if status == 206 else headers.get("Content-Length")
    return int(text) if text and text.strip().isdigit() else None


def _start_offset(transfer: _Transfer, response: object, url: str, offset: int) -> int:
    """Where the body goes in ``part``: ``offset`` for a matching 206, 0 when the server sent everything.

    Raises:
        ChecksumError: the server states a file size other than the catalogue's (refused before any byte).
    """
    status = getattr(response, "status", 200)
    headers = getattr(response, "headers", {})
    declared = _declared_total(status, headers)
    if transfer.size is not None and declared is not None and declared != transfer.size:
        raise ChecksumError(
            f"refusing {transfer.model} from {url}: the server's file has {declared:,} bytes, the catalogue says "
            f"{transfer.size:,}"
        )
    if offset and status == 206:
        content_range = headers.get("Content-Range", "")
        if content_range.startswith(f"bytes {offset}-"):
            return offset
        raise _Attempt(f"the server answered a resume with the wrong range {content_range!r}", retry=False)
    if offset:
        logger.info("%s ignored the Range request; downloading %s from the start", url, transfer.model)
    validator = headers.get("ETag") or headers.get("Last-Modified")
    _meta_path(transfer.part).write_text(json.dumps({"url": url, "validator": validator}), encoding="utf-8")
    return 0


def _stream(
    transfer: _Transfer,
    response: BinaryIO,
    out: BinaryIO,
    received: int,
    policy: DownloadPolicy,
    cancel: CancelSignal | None,
) -> int:
    while True:
        if _cancelled(cancel):
            raise Cancelled(f"the download of {transfer.model} was cancelled")
        chunk = response.read(policy.chunk_size)
        if not chunk:
            return received
        received += len(chunk)
        if transfer.size is not None and received > transfer.size:
            raise ChecksumError(
                f"refusing {transfer.model}: the server sent more than the catalogue's size of {transfer.size:,} bytes"
            )
        out.write(chunk)
        transfer.report(received)


def _attempt(transfer: _Transfer, url: str, policy: DownloadPolicy, cancel: CancelSignal | None) -> None:
    """One request for what ``part`` lacks; returns when the server has sent everything."""
    offset = transfer.have()
    if transfer.size is not None and offset >= transfer.size:
        if offset == transfer.size:
            return
        logger.warning("%s is larger than the catalogue's size; starting %s again", transfer.part, transfer.model)
        _discard(transfer.part)
        offset = 0
    try:
        # A new opener per attempt reads the proxy variables now (urlopen's shared opener keeps the first ones).
        opener = urllib.request.build_opener()
        with opener.open(transfer.request(url, offset), timeout=policy.timeout) as response:
            start = _start_offset(transfer, response, url, offset)
            with transfer.part.open("r+b" if start else "wb") as out:
                out.seek(start)
                out.truncate()
                received = _stream(transfer, response, out, start, policy, cancel)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send, or the file changed: start again
            _discard(transfer.part)
            raise _Attempt("HTTP 416 (range not satisfiable)", retry=True) from err
        raise _Attempt(f"HTTP {err.code} {err.reason}", retry=err.code in _RETRY_STATUS) from err
    except TimeoutError as err:
        raise _Attempt(f"timed out after {policy.timeout:g} s without data", retry=True) from err
    except urllib.error.URLError as err:
        timed_out = isinstance(err.reason, TimeoutError)
        reason = f"timed out after {policy.timeout:g} s without data" if timed_out else str(err.reason)
        raise _Attempt(reason, retry=True) from err
    except (ConnectionError, HTTPException, OSError) as err:
        raise _Attempt(f"{type(err).__name__}: {err}", retry=True) from err
    if transfer.size is not None and received < transfer.size:
        raise _Attempt(f"the connection closed after {received:,} of {transfer.size:,} bytes", retry=True)


def _wait(seconds: float, cancel: CancelSignal | None, model: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _cancelled(cancel):
            raise Cancelled(f"the download of {model} was cancelled")
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))


def _from_mirror(transfer: _Transfer, url: str, policy: DownloadPolicy, cancel: CancelSignal | None) -> str | None:
    """Download from one mirror; ``None`` on success, else why it failed."""
    for number in range(1, policy.tries + 1):
        try:
            _attempt(transfer, url, policy, cancel)
            return None
        except _Attempt as err:
            logger.warning("download of %s from %s, try %d of %d: %s", transfer.model, url, number, policy.tries, err)
            if not err.retry:
                return f"from {url}: {err}"
            if number == policy.tries:
                return f"from {url} after {policy.tries} tries: {err}"
            _wait(policy.backoff * 2 ** (number - 1), cancel, transfer.model)
    return f"from {url}: no attempt made"


def _check(part: Path, size: int | None, sha256: str | None, model: str) -> str:
    """The SHA-256 of the complete ``part``; refuses (and deletes) a wrong size or hash."""
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        _discard(part)
        raise ChecksumError(f"refusing {model}: downloaded {actual_size:,} bytes, the catalogue says {size:,}")
    digest = hashlib.sha256()
    with part.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256.lower():
        _discard(part)
        raise ChecksumError(
            f"refusing {model}: the download's SHA-256 checksum is {actual}, the catalogue expects {sha256}; "
            "the file was damaged or tampered with, and was deleted"
        )
    return actual


def download(
    urls: Sequence[str],
    part: Path,
    *,
    size: int | None,
    sha256: str | None,
    model: str,
    policy: DownloadPolicy | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelSignal | None = None,
) -> str:
    """Download an archive into ``part`` (resuming what it holds), then check its size and SHA-256.

    Args:
        urls: mirrors, tried in order; each gets ``policy.tries`` attempts.
        part: the partial file (created; kept when the download is interrupted, deleted when refused).
        size: expected bytes (``None``: unknown, no size check).
        sha256: expected hex digest (``None``: unpinned, the digest is only computed).
        model: ``ID@VERSION``, for messages and progress events.
        policy: timeouts, tries and back-off (default :class:`DownloadPolicy`).
        progress: receives :class:`~GASACore.events.DownloadEvent` s.
        cancel: stops the download (``Cancelled``), keeping ``part`` for a later resume.

    Returns:
        The archive's SHA-256 (hex), checked against ``sha256`` when given.

    Raises:
        DownloadError: every mirror failed ("could not download X from URL after 3 tries: ...").
        ChecksumError: wrong size or SHA-256 (``part`` deleted).
        Cancelled: ``cancel`` was set.
    """
    if not urls:
        raise DownloadError(f"model {model} has no download URL in the catalogue")
    policy = policy or DownloadPolicy()
    part.parent.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(part, size, model, progress)
    failures = []
    for url in urls:
        try:
            failure = _from_mirror(transfer, url, policy, cancel)
        except ChecksumError:
            _discard(part)
            raise
        if failure is None:
            transfer.report(transfer.have(), force=True)
            digest = _check(part, size, sha256, model)
            _meta_path(part).unlink(missing_ok=True)
            return digest
        failures.append(failure)
    raise DownloadError(f"could not download {model} " + "; ".join(failures))
