"""Damaged checkpoints are detected and named, never loaded silently; saving fails with a message, not a trace.

A table of damaged files (empty, text, garbage, truncated, one flipped byte, the wrong kind) for a network file
and the training state: each gives a CheckpointError naming the file, what is wrong and advice that fits that
file. Tiny tensors, no training.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from util import checkpoint
from util.checkpoint import STATE_FILE, CheckpointError, load_weights_only, save_atomic, verify_checkpoint_bytes
from util.fileio import remove_stale_temporaries

NET_FILE = "latest_net_G_A.pth"


def net_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Conv2d(2, 3, 3).state_dict()


def training_state() -> dict:
    return {"epoch": 3, "epoch_iter": 5, "model": {"networks": {"G_A": net_weights()}, "optimizers": []}}


def tensor_data_offset(data: bytes, member_suffix: str = "/data/0") -> int:
    """Where the bytes of the first tensor's storage start in a torch.save file."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length


def flip_one_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[tensor_data_offset(data) + 3] ^= 0x40  # the exponent bits of the first float
    return bytes(damaged)


class NotWeights:
    pass


def needs_code(_: bytes) -> bytes:
    stream = io.BytesIO()
    torch.save({"payload": NotWeights()}, stream)
    return stream.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return stream.getvalue()


def other_kind(kind: str) -> Callable[[bytes], bytes]:
    def make(_: bytes) -> bytes:
        stream = io.BytesIO()
        torch.save(training_state() if kind == "net" else net_weights(), stream)
        return stream.getvalue()
    return make


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda data: b"",
    "text": lambda data: b"epoch 3, iteration 5\nloss_G 0.5\n",
    "garbage": lambda data: bytes(range(256)) * 4,
    "half": lambda data: data[:len(data) // 2],
    "tail cut": lambda data: data[:-10],
    "flipped byte": flip_one_byte,
    "legacy garbage": lambda data: checkpoint.LEGACY_MAGIC + bytes(range(256)),  # pre-zip format, no checksums
    "other zip": lambda data: zip_of({"notes.txt": b"epoch 3"}),
    "needs code": needs_code,
}
EXPECTED = {  # damage -> what the message says, for either kind of file
    "empty": "is empty (0 bytes)",
    "text": "is not a PyTorch checkpoint (it is text",
    "garbage": "is not a PyTorch checkpoint",
    "half": "is truncated or corrupt",
    "tail cut": "is truncated or corrupt",
    "flipped byte": "checksum mismatch in",
    "legacy garbage": "(Unsupported operand 0): the file is truncated or corrupt",
    "other zip": "is a zip archive but not a PyTorch checkpoint",
    "needs code": "it needs arbitrary Python code to unpickle (it holds a test_checkpoint.NotWeights object",
    "wrong kind": {"net": "is a training state (latest_state.pth), not one network's weights",
                   "state": "is not a training state: it lacks 'epoch', 'model' (it is a network's weights"},
}
ADVICE = {  # kind -> what a damaged file of that kind advises, and what it must not
    "net": ("use another --epoch", "--continue_train"),
    "state": ("exact resume (--continue_train) is impossible", "another --epoch"),
}


@pytest.fixture(params=["net", "state"])
def saved(request, tmp_path) -> tuple[str, Path]:
    """A real checkpoint of each kind, written by save_atomic under the name train.py gives it."""
    if request.param == "net":
        return "net", save_atomic(net_weights(), tmp_path / NET_FILE)
    return "state", save_atomic(training_state(), tmp_path / STATE_FILE)


def test_round_trip_verifies_checksums_and_gives_the_same_tensors(saved):
    kind, path = saved
    data = path.read_bytes()
    crcs = [info.CRC for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]
    assert all(crcs) and verify_checkpoint_bytes(data) is None
    loaded = load_weights_only(path)
    weights = loaded if kind == "net" else loaded["model"]["networks"]["G_A"]
    assert weights.keys() == net_weights().keys()
    assert all(torch.equal(weights[k], v) for k, v in net_weights().items())
    torch.load(path, weights_only=True)  # still a plain checkpoint for users
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no sidecar, no temporary file"


@pytest.mark.parametrize("damage", [*DAMAGE, "wrong kind"])
def test_damaged_checkpoint_gives_an_error_naming_file_problem_and_fitting_advice(saved, damage):
    kind, path = saved
    make = other_kind(kind) if damage == "wrong kind" else DAMAGE[damage]
    path.write_bytes(make(path.read_bytes()))
    with pytest.raises(CheckpointError) as caught:
        load_weights_only(path)
    message = str(caught.value)
    expected = EXPECTED[damage][kind] if isinstance(EXPECTED[damage], dict) else EXPECTED[damage]
    assert str(path) in message and expected in message, message
    assert "weights_only=False" not in message and "\n" not in message, message
    if damage not in ("needs code", "wrong kind"):
        advice, wrong_advice = ADVICE[kind]
        assert advice in message and wrong_advice not in message, message


def test_one_flipped_byte_in_tensor_data_is_caught_where_torch_load_is_silent(tmp_path):
    path = save_atomic(net_weights(), tmp_path / "7_net_D_B.pth")
    data = path.read_bytes()
    expected = next(i.CRC for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith("/data/0"))
    path.write_bytes(flip_one_byte(data))
    silently_wrong = torch.load(path, weights_only=True)["weight"]
    assert not torch.equal(silently_wrong, net_weights()["weight"])
    with pytest.raises(CheckpointError, match=f"crc32 expected {expected:08x}, found [0-9a-f]{{8}}"):
        load_weights_only(path)


def test_files_without_checksums_still_load(tmp_path):
    legacy = tmp_path / "authors_net_G_A.pth"  # the pre-zip format of the authors' checkpoints has no checksums
    torch.save(net_weights(), legacy, _use_new_zipfile_serialization=False)
    assert load_weights_only(legacy, kind="net").keys() == net_weights().keys()
    if hasattr(torch.serialization, "set_crc32_options"):
        unchecked = tmp_path / "unchecked_net_G_A.pth"
        torch.serialization.set_crc32_options(False)
        try:
            torch.save(net_weights(), unchecked)
            ours = save_atomic(net_weights(), tmp_path / "ours_net_G_A.pth")
        finally:
            torch.serialization.set_crc32_options(True)
        assert load_weights_only(unchecked).keys() == net_weights().keys()
        assert all(info.CRC for info in zipfile.ZipFile(ours).infolist()), "save_atomic always writes checksums"


def full_disk_after(limit: int):
    """torch.save into a stream whose writes fail with ENOSPC after ``limit`` bytes, as on a full disk."""
    real_save = torch.save

    class FullDisk(io.RawIOBase):
        def __init__(self, stream):
            self.stream, self.written = stream, 0

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            self.written += len(data)
            if self.written > limit:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.stream.write(data)

    return lambda obj, stream, *args, **kwargs: real_save(obj, FullDisk(stream), *args, **kwargs)


def failing(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("where, expected", [
    ("torch.save", "the disk is full"),    # torch wraps the ENOSPC in an inline_container RuntimeError
    ("fsync", "the disk is full"),        # written into the page cache, refused on the way to the disk
    ("mkstemp", "check the permissions of"),  # a folder the user may not write to
])
def test_a_failed_save_names_file_and_free_space_and_keeps_the_old_file(tmp_path, monkeypatch, where, expected):
    path = save_atomic(training_state(), tmp_path / STATE_FILE)
    before = path.read_bytes()
    if where == "torch.save":
        monkeypatch.setattr(checkpoint.torch, "save", full_disk_after(300))
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", failing(errno.ENOSPC))
    else:
        monkeypatch.setattr(tempfile, "mkstemp", failing(errno.EACCES))
    with pytest.raises(CheckpointError) as caught:
        save_atomic({**training_state(), "epoch": 4}, path)
    message = str(caught.value)
    assert str(path) in message and expected in message and "free on the file system of" in message, message
    assert "inline_container" not in message and "is unchanged" in message, message
    monkeypatch.undo()
    assert path.read_bytes() == before and load_weights_only(path)["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE], "a temporary file was left"


def test_stale_temporaries_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    old = time.time() - 3600
    stale = [tmp_path / f".{STATE_FILE}.k3j_9x0a.tmp", web / ".index.html.abcdefgh.tmp"]
    young = tmp_path / f".{NET_FILE}.q1w2e3r4.tmp"      # a write that may still be in progress
    others = [tmp_path / ".notes.tmp", tmp_path / "run.abcdefgh.tmp", tmp_path / NET_FILE,
              tmp_path / ".x.ABCDEFGH.tmp"]              # not named like ours
    for path in [*stale, young, *others]:
        path.write_bytes(b"partial")
    for path in [*stale, *others]:
        os.utime(path, (old, old))
    removed = remove_stale_temporaries(tmp_path, older_than_s=60)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale) and young.exists() and all(p.exists() for p in others)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_killed_write_leaves_a_temporary_that_the_cleanup_matches(tmp_path, monkeypatch):
    kept = []
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: kept.append(self))  # as if killed -9
    with pytest.raises(CheckpointError):
        monkeypatch.setattr(checkpoint.torch, "save", full_disk_after(100))
        save_atomic(net_weights(), tmp_path / NET_FILE)
    monkeypatch.undo()
    assert len(kept) == 1 and kept[0].exists()
    assert remove_stale_temporaries(tmp_path, older_than_s=0) == kept and not kept[0].exists()


def test_checkpoints_are_written_0644_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        path = save_atomic(net_weights(), tmp_path / NET_FILE)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
