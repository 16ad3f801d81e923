"""Saving and loading checkpoints safely: atomic writes, weights-only loading and checksum verification.

Every file ``save_atomic`` writes is a ``torch.save`` zip archive whose members (the pickle and each tensor's
bytes) carry a CRC-32 in the zip index; ``load_weights_only`` reads the file once, recomputes those checksums
and refuses a file whose bytes changed (bit rot, a bad copy) before unpickling anything. The checksums live
inside the file, so the files stay plain ``torch.load(weights_only=True)`` checkpoints, a copied or renamed file
keeps its own checksums, and older files are verified too. Files without checksums (the legacy pre-zip format
of the authors' checkpoints) still load, unverified.

Every failure is a ``CheckpointError`` naming the file, what is wrong with it and what to do, the advice fitting
the file: another ``--epoch`` for a ``<epoch>_net_<name>.pth`` file, what can still be done for a damaged
training state.
"""

from __future__ import annotations

import errno
import io
import pickle
import re
import shutil
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .fileio import atomic_write

# The one file exact resume reads (train.py writes it beside latest_net_*.pth).
STATE_FILE = "latest_state.pth"
# Keys every training state holds (train.py writes more): what tells a training state from a network file.
STATE_KEYS = ("epoch", "model")

ZIP_MAGIC = b"PK\x03\x04"
# torch.save's legacy (pre-1.6, non-zip) format begins with a pickled magic number; it has no checksums.
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_NEEDS_CODE = re.compile(r"Unsupported (?:global|class):? (?:GLOBAL )?([\w.]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


# ---------------------------------------------------------------------------------------------------- saving
def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through ``util.fileio.atomic_write``: a crash at any moment leaves either the old file
    or the new one, never a truncated checkpoint. The file carries CRC-32 checksums that ``load_weights_only``
    verifies.

    A failed write (disk full, no permission) raises ``CheckpointError`` naming the file, the free space where it
    goes and the fix; the previous file, if any, is unchanged and no temporary file is left.
    """
    path = Path(path)
    try:
        with _checksums_on():
            return atomic_write(path, lambda stream: torch.save(obj, stream))
    except (OSError, RuntimeError) as err:
        raise CheckpointError(_write_failure(path, err)) from err


@contextmanager
def _checksums_on() -> Iterator[None]:
    """torch >= 2.6 can be told not to compute CRC-32s (``torch.serialization.set_crc32_options``); our files
    always get them."""
    previous = getattr(torch.serialization, "get_crc32_options", lambda: True)()
    if not previous:
        torch.serialization.set_crc32_options(True)
    try:
        yield
    finally:
        if not previous:
            torch.serialization.set_crc32_options(False)


def _write_failure(path: Path, err: BaseException) -> str:
    cause = _os_error_in(err)
    folder = _existing_folder(path.parent)
    try:
        free = f"{format_bytes(shutil.disk_usage(folder).free)} free on the file system of {folder}"
    except OSError:
        free = f"free space on the file system of {folder} unknown"
    keep = f"the previous {path.name}, if there was one, is unchanged"
    if cause is not None and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        full = "the disk is full" if cause.errno == errno.ENOSPC else "the disk quota is exhausted"
        return (f"cannot write checkpoint {path}: {full} ({free}); free space there or choose a --checkpoints_dir "
                f"on a larger disk, then run again; {keep}")
    reason = _first_line(cause if cause is not None else err)
    hint = f"check the permissions of {folder}" if cause is not None and cause.errno in (
        errno.EACCES, errno.EPERM, errno.EROFS) else "check the disk and the folder"
    return f"cannot write checkpoint {path} ({reason}; {free}); {hint}, then run again; {keep}"


def _os_error_in(err: BaseException) -> OSError | None:
    """The OSError behind ``err``: torch reports a failed stream write as a RuntimeError raised from it."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _existing_folder(folder: Path) -> Path:
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def format_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------------- loading
def checkpoint_kind(path: str | Path) -> str:
    """``'state'`` for the training state file, ``'net'`` for ``<epoch>_net_<name>.pth``, else ``'file'``."""
    name = Path(path).name
    if name == STATE_FILE:
        return "state"
    if re.fullmatch(r".+_net_.+\.pth", name):
        return "net"
    return "file"


def load_weights_only(path: str | Path, map_location: str | torch.device = "cpu", *, kind: str | None = None) -> Any:
    """``torch.load(weights_only=True)`` of a file whose checksums are verified first.

    ``kind`` (``'net'``, ``'state'`` or ``'file'``; by default from the file name, see ``checkpoint_kind``) picks
    the advice in error messages and what the file must hold: a network file a state dict of tensors, the
    training state a dict with ``STATE_KEYS``. A missing, empty, truncated, corrupt or foreign file, one that
    needs arbitrary code to unpickle and one of the wrong kind raise ``CheckpointError``.
    """
    path = Path(path)
    kind = kind or checkpoint_kind(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check --checkpoints_dir, --name and --epoch")
    try:
        data = path.read_bytes()  # read once: what is verified is what is loaded
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path} ({_first_line(err)}); check the disk and the file "
                              f"permissions") from None
    problem = verify_checkpoint_bytes(data)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} {problem}; {damaged_advice(path, kind)}")
    try:
        loaded = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        needs = _NEEDS_CODE.search(_ANSI.sub("", str(err)))
        if needs is None:
            raise CheckpointError(f"cannot read checkpoint {path} ({_unpickling_problem(err)}): the file is "
                                  f"truncated or corrupt; {damaged_advice(path, kind)}") from None
        raise CheckpointError(f"refusing to load {path}: it needs arbitrary Python code to unpickle (it holds a "
                              f"{needs[1]} object, not only tensors); only load files you trust, in Python, and "
                              f"re-save their state_dict with torch.save") from None
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - a damaged pickle fails in many ways (KeyError, ValueError, ...)
        reason = f"{type(err).__name__}: {_first_line(err)}" if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path} ({reason}): the file is truncated or corrupt; "
                              f"{damaged_advice(path, kind)}") from None
    wrong = _wrong_kind(loaded, kind)
    if wrong is not None:
        raise CheckpointError(f"checkpoint {path} {wrong}")
    return loaded


def verify_checkpoint_bytes(data: bytes) -> str | None:
    """What is wrong with the bytes of a ``torch.save`` file (``'is empty (0 bytes)'``, ``'is corrupt: ...'``),
    or None when they look sound: a zip archive whose members all match their CRC-32, or a legacy-format file
    (which has no checksums to check)."""
    if not data:
        return "is empty (0 bytes)"
    if data.startswith(LEGACY_MAGIC):
        return None
    if not data.startswith(ZIP_MAGIC):
        return f"is not a PyTorch checkpoint ({_describe_foreign(data)})"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, struct.error) as err:
        return (f"is truncated or corrupt ({len(data)} bytes; the zip index at its end is missing or unreadable: "
                f"{_first_line(err)})")
    if not any(info.filename.endswith("data.pkl") for info in members):
        return "is a zip archive but not a PyTorch checkpoint (no data.pkl in it)"
    if all(info.CRC == 0 for info in members):
        return None  # written with torch.serialization.set_crc32_options(False): nothing to verify
    view = memoryview(data)
    for info in members:
        try:
            actual = _member_crc(archive, view, info)
        except (zipfile.BadZipFile, ValueError, EOFError, struct.error, zlib.error) as err:
            return f"is truncated or corrupt (member {info.filename}: {_first_line(err)})"
        if actual != info.CRC:
            return (f"is corrupt: its bytes changed after it was written (checksum mismatch in {info.filename}: "
                    f"crc32 expected {info.CRC:08x}, found {actual:08x})")
    return None


def _member_crc(archive: zipfile.ZipFile, data: memoryview, info: zipfile.ZipInfo) -> int:
    """CRC-32 of one member's bytes; torch stores members uncompressed, so they are hashed in place."""
    if info.compress_type != zipfile.ZIP_STORED:  # not from torch.save
        archive.read(info)  # zipfile checks the CRC-32 itself: BadZipFile on a mismatch
        return info.CRC
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    if signature != ZIP_MAGIC:
        raise zipfile.BadZipFile(f"no local header at offset {info.header_offset}")
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + info.compress_size > len(data):
        raise zipfile.BadZipFile(f"data runs past the end of the file ({len(data)} bytes)")
    return zlib.crc32(data[start:start + info.compress_size])


def _describe_foreign(data: bytes) -> str:
    head = data[:64]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"it is text, {len(data)} bytes beginning {first!r}"
    return f"{len(data)} bytes beginning {head[:16].hex(' ')}"


def damaged_advice(path: str | Path, kind: str) -> str:
    """What to do when the checkpoint ``path`` of ``kind`` cannot be used."""
    path = Path(path)
    if kind == "state":
        return (f"exact resume (--continue_train) is impossible, the optimiser, scheduler and RNG state it held are "
                f"lost; the weights of the last save may still be sound in {path.parent}/latest_net_*.pth (test.py "
                f"--epoch latest) and those of kept epochs in <epoch>_net_*.pth; to train on, train anew without "
                f"--continue_train under another --name (keeping these files), or restore {path.name} from a backup")
    if kind == "net":
        return (f"use another --epoch (the <epoch>_net_*.pth files in {path.parent}), or restore {path.name} from "
                f"a backup")
    return "check the path, or write the file again"


def _wrong_kind(loaded: Any, kind: str) -> str | None:
    if kind == "state":
        if not isinstance(loaded, Mapping):
            return f"is not a training state (it holds a {type(loaded).__name__}); pass the {STATE_FILE} train.py wrote"
        missing = [key for key in STATE_KEYS if key not in loaded]
        if missing:
            looks = (" (it is a network's weights, like <epoch>_net_<name>.pth)" if _is_state_dict(loaded) else "")
            return (f"is not a training state: it lacks {', '.join(repr(k) for k in missing)}{looks}; pass the "
                    f"{STATE_FILE} train.py wrote")
    if kind == "net" and not _is_state_dict(loaded):
        if isinstance(loaded, Mapping) and all(key in loaded for key in STATE_KEYS):
            return f"is a training state ({STATE_FILE}), not one network's weights; pass a <epoch>_net_<name>.pth file"
        return (f"is not a network's weights (a state dict of tensors; it holds a {type(loaded).__name__}); "
                f"pass a <epoch>_net_<name>.pth file written by train.py or scripts/convert_authors_checkpoint.py")
    return None


def _is_state_dict(loaded: Any) -> bool:
    """A ``Module.state_dict()``: string keys to tensors (modules' ``_extra_state`` may be anything)."""
    return isinstance(loaded, Mapping) and all(
        isinstance(key, str) and (isinstance(value, torch.Tensor) or key.endswith("_extra_state"))
        for key, value in loaded.items())


def _unpickling_problem(err: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler found, without its advice to retry with weights_only=False (wrong for
    a damaged file, unsafe for a foreign one)."""
    advice = ("weights_only", "Weights only load failed", "Please file an issue", "Check the documentation",
              "trusted source", "can still be loaded")
    for line in _ANSI.sub("", str(err)).splitlines():
        line = line.split("WeightsUnpickler error:")[-1].strip()
        if line and not any(phrase in line for phrase in advice):
            return line
    return "not a valid weights-only pickle"


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type when the message is empty."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
