"""Finding the Python objects a torch checkpoint would create, before torch reads it.

A torch checkpoint (``torch.save``'s zip format) holds its object tree as a pickle, ``<name>/data.pkl``. A pickle
creates objects by naming them (``GLOBAL`` and ``STACK_GLOBAL`` opcodes: ``module name``); loading one that names
``io.open`` or ``os.system`` runs that code. :func:`scan_checkpoint` lists every name the pickle uses, without
running it (``pickletools``), and refuses a checkpoint that names anything beyond torch's tensor rebuild and
numpy's plain types, in our own words: GASASegmenter never runs code from a model file, and never suggests to.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from GASACore.bundle.zipcheck import ZipLimits, check_zip_members
from GASACore.errors import ModelError, UnsafeModelError
from GASACore.io.limits import format_bytes

__all__ = ["MAX_PICKLE_BYTES", "is_allowed_global", "pickle_globals", "scan_checkpoint"]

#: Largest pickle read from a checkpoint (an nnU-Net checkpoint's is well below 1 MB).
MAX_PICKLE_BYTES = 256 * 1000**2

#: Names a weights checkpoint may use: torch's tensor rebuild, containers and numpy's plain values.
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),  # how protocol 2 pickles bytes (numpy scalars hold their value as bytes)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
}
_TORCH_DTYPES = {
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "half",
    "float",
    "double",
    "long",
    "int",
    "short",
}
#: Protocol 2 pickles name these Python 3 modules by their Python 2 names.
_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}


def is_allowed_global(module: str, name: str) -> bool:
    """Whether a pickle may name ``module.name``: torch's tensor rebuild and storages, dtypes, numpy's plain types."""
    if (module, name) in _ALLOWED:
        return True
    if module == "torch" and (name.endswith("Storage") or name in _TORCH_DTYPES):
        return True
    return module == "numpy.dtypes" and name.endswith("DType") and name.isidentifier()


def pickle_globals(data: bytes) -> list[str]:
    """Every ``module.name`` a pickle names (``GLOBAL``, ``INST``, ``STACK_GLOBAL``), in order, without running it.

    A ``STACK_GLOBAL`` whose module and name are not plain strings pushed just before is listed as
    ``"<computed name>"``, which no allow-list admits.

    Raises:
        ModelError: the pickle is malformed (``pickletools`` cannot walk it).
    """
    found: list[str] = []
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []  # what the last pushes put on the stack: a string, or None for anything else
    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attribute = str(arg).partition(" ")
                found.append(f"{_PYTHON2_MODULES.get(module, module)}.{attribute}")
                recent.append(None)
            elif name == "STACK_GLOBAL":
                pair = recent[-2:]
                if len(pair) == 2 and all(isinstance(part, str) for part in pair):
                    found.append(f"{pair[0]}.{pair[1]}")
                else:
                    found.append("<computed name>")
                del recent[-2:]
                recent.append(None)
            elif name in _STRING_OPS:
                recent.append(str(arg))
            elif name in _GET_OPS:
                recent.append(memo.get(int(arg)))
            elif name in _PUT_OPS:
                memo[int(arg)] = recent[-1] if recent else None
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name != "FRAME":
                recent.append(None)
            if len(recent) > 64:
                del recent[:-8]
    except Exception as err:  # pickletools raises ValueError and others on malformed data
        raise ModelError(f"expected a valid pickle, found malformed data ({type(err).__name__}: {err})") from err
    return found


def scan_checkpoint(path: Path, limits: ZipLimits | None = None) -> None:
    """Refuse a torch checkpoint that is not a safe zip or whose pickle names anything but tensors and values.

    Raises:
        ModelError: not a zip-format checkpoint, a zip over the limits (``check_zip_members``), no or an
            oversized ``data.pkl``, a malformed pickle.
        UnsafeModelError: ``<file> contains Python objects (io.open) that GASASegmenter never runs``.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"cannot read checkpoint {path}: expected a torch zip checkpoint (torch.save since torch 1.6, as nnU-Net "
            "v2 writes), found another format"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_members(archive, path, limits, what="an nnU-Net checkpoint")
            pickles = [m for m in archive.infolist() if m.filename == "data.pkl" or m.filename.endswith("/data.pkl")]
            if not pickles:
                raise ModelError(
                    f"cannot read checkpoint {path}: expected a torch zip checkpoint with data.pkl, found none"
                )
            names: list[str] = []
            for member in pickles:
                if member.file_size > MAX_PICKLE_BYTES:
                    raise ModelError(
                        f"cannot read checkpoint {path}: expected its {member.filename} to hold at most "
                        f"{format_bytes(MAX_PICKLE_BYTES)}, found {format_bytes(member.file_size)}"
                    )
                try:
                    names += pickle_globals(archive.read(member))
                except ModelError as err:
                    raise ModelError(f"cannot read checkpoint {path} ({member.filename}): {err}") from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelError(f"cannot read checkpoint {path}: expected an intact zip file ({err})") from err
    unsafe = sorted({name for name in names if not is_allowed_global(*_split(name))})
    if unsafe:
        shown = ", ".join(unsafe[:6]) + (f" and {len(unsafe) - 6} more" if len(unsafe) > 6 else "")
        raise UnsafeModelError(f"{path} contains Python objects ({shown}) that GASASegmenter never runs")


def _split(qualified: str) -> tuple[str, str]:
    module, _, name = qualified.rpartition(".")
    return module, name
