"""Tests of trainart.checkpoint: round trips, atomic writes, and every kind of damaged file
raising CheckpointError."""

import json
import os
import struct

import numpy as np
import pytest
from safetensors.numpy import save as st_save

import trainart
from trainart import checkpoint
from trainart.errors import CheckpointError


def mixed_tensors():
    rng = np.random.default_rng(0)
    return {
        "layer0/W": rng.standard_normal((5, 3)).astype(np.float32),
        "layer0/b": rng.standard_normal(3),
        "steps": np.arange(7, dtype=np.int64),
        "mask": rng.random((2, 4)) > 0.5,
        "bytes": np.arange(256, dtype=np.uint8),
        "scalar": np.array(2.5, dtype=np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "strided": np.arange(20.0).reshape(4, 5)[::2, 1::2],
        "big_endian": np.arange(6, dtype=">f8").reshape(2, 3),
        "half": np.linspace(0, 1, 5).astype(np.float16),
    }


META = {
    "config": {"layers": [64, 128, 10], "activation": "relu", "dropout": 0.5},
    "optimizer": {"name": "Adam", "betas": (0.9, 0.999), "step": 987654},
    "epoch": 17,
    "rng": {"bit_generator": "PCG64", "state": {"state": 2 ** 100 + 7, "inc": 3}},
    "best": None,
    "flags": [True, False],
    "numpy_scalars": {"f32": np.float32(0.25), "i64": np.int64(-3), "b": np.bool_(True)},
    "nonfinite": [float("nan"), float("inf")],
    "unicode": "température",
}


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "run.ckpt"
    checkpoint.write(path, mixed_tensors(), META)
    return path


def test_round_trip_mixed_dtypes_and_nested_meta(ckpt):
    tensors, meta = checkpoint.read(ckpt)
    want = mixed_tensors()
    assert set(tensors) == set(want)
    for name, arr in want.items():
        got = tensors[name]
        assert got.shape == arr.shape, name
        assert got.dtype == arr.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(got, arr, err_msg=name)
        assert got.flags.writeable and got.flags.c_contiguous, name
    assert meta["config"] == META["config"]
    assert meta["optimizer"] == {"name": "Adam", "betas": [0.9, 0.999], "step": 987654}
    assert meta["rng"]["state"]["state"] == 2 ** 100 + 7   # big ints survive exactly
    assert meta["best"] is None and meta["flags"] == [True, False]
    assert meta["numpy_scalars"] == {"f32": 0.25, "i64": -3, "b": True}
    assert type(meta["numpy_scalars"]["i64"]) is int
    assert np.isnan(meta["nonfinite"][0]) and meta["nonfinite"][1] == float("inf")
    assert meta["unicode"] == "température"


def test_file_is_plain_safetensors_with_versions(ckpt):
    data = ckpt.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    md = json.loads(data[8:8 + n])["__metadata__"]
    assert md["format"] == "trainart.checkpoint"
    assert md["format_version"] == "1"
    assert md["trainart_version"] == trainart.__version__
    assert len(md["sha256"]) == 64
    assert json.loads(md["meta"])["epoch"] == 17


def test_empty_tensors_and_meta(tmp_path):
    checkpoint.write(tmp_path / "e.ckpt", {}, {})
    assert checkpoint.read(tmp_path / "e.ckpt") == ({}, {})


def test_atomic_write_leaves_only_the_file(tmp_path, ckpt):
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    checkpoint.write(str(ckpt), {"x": np.ones(3)}, {"second": True})   # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    tensors, meta = checkpoint.read(ckpt)
    assert meta == {"second": True} and list(tensors) == ["x"]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, ckpt, monkeypatch):
    before = ckpt.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.write(ckpt, {"x": np.ones(3)}, {})
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    assert ckpt.read_bytes() == before


def test_write_into_a_missing_folder_names_the_path_not_a_temporary_file(tmp_path):
    # mkstemp's error named '.../nope/.run.ckpt.XXXX.tmp', a file the caller never asked for.
    path = tmp_path / "nope" / "run.ckpt"
    with pytest.raises(FileNotFoundError) as info:
        checkpoint.write(path, {"x": np.ones(3)}, {})
    assert str(info.value) == (f"checkpoint.write writes {str(path)!r}, but the folder "
                               f"{str(path.parent)!r} does not exist")
    assert sorted(os.listdir(tmp_path)) == []


def test_invalid_input_writes_nothing(tmp_path):
    path = tmp_path / "bad.ckpt"
    with pytest.raises(TypeError, match=r"meta\['a'\]\[1\]\['w'\].*ndarray"):
        checkpoint.write(path, {}, {"a": [1, {"w": np.zeros(2)}]})
    with pytest.raises(TypeError, match=r"meta\['opt'\].*non-str key 3"):
        checkpoint.write(path, {}, {"opt": {3: 1.0}})
    with pytest.raises(TypeError, match=r"meta\['f'\].*function"):
        checkpoint.write(path, {}, {"f": len})
    with pytest.raises(TypeError, match="meta must be a dict"):
        checkpoint.write(path, {}, [1])
    with pytest.raises(TypeError, match=r"tensors\['c'\].*complex128"):
        checkpoint.write(path, {"c": np.zeros(2, complex)}, {})
    with pytest.raises(TypeError, match=r"tensors\['o'\].*object"):
        checkpoint.write(path, {"o": np.array([None])}, {})
    with pytest.raises(TypeError, match=r"tensors\['l'\] must be a numpy array"):
        checkpoint.write(path, {"l": [1.0]}, {})
    with pytest.raises(TypeError, match="tensor names must be str"):
        checkpoint.write(path, {1: np.ones(1)}, {})
    with pytest.raises(ValueError, match="reserved"):
        checkpoint.write(path, {"__metadata__": np.ones(1)}, {})
    assert os.listdir(tmp_path) == []


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        checkpoint.read(tmp_path / "nope.ckpt")


def header_end(data):
    return 8 + struct.unpack("<Q", data[:8])[0]


def test_truncated_file_at_several_cut_points(tmp_path, ckpt):
    data = ckpt.read_bytes()
    end = header_end(data)
    cuts = [0, 1, 7, 8, 9, end // 2, end - 1, end, end + 1, (end + len(data)) // 2, len(data) - 1]
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.ckpt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|empty") as info:
            checkpoint.read(bad)
        assert str(bad) in str(info.value)


def test_flipped_byte_in_data_is_a_checksum_mismatch(tmp_path, ckpt):
    data = bytearray(ckpt.read_bytes())
    for pos in (header_end(data), len(data) // 2 + header_end(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01   # a one-bit change: still a valid float/int/bool byte pattern
        path = tmp_path / "flipped.ckpt"
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match="SHA-256"):
            checkpoint.read(path)


def test_flipped_byte_in_header_json(tmp_path, ckpt):
    data = ckpt.read_bytes()
    pos = data.index(b"relu")
    bad = bytearray(data)
    bad[pos] ^= 0xFF   # breaks UTF-8 / JSON
    path = tmp_path / "h.ckpt"
    path.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="header"):
        checkpoint.read(path)


def test_edited_header_that_stays_valid_json_is_caught(tmp_path, ckpt):
    data = ckpt.read_bytes()
    # Same length, still valid JSON: only the checksum can tell.
    for old, new in ((b"relu", b"tanh"), (b"987654", b"987655")):
        assert data.count(old) == 1
        path = tmp_path / "edit.ckpt"
        path.write_bytes(data.replace(old, new))
        with pytest.raises(CheckpointError, match="SHA-256"):
            checkpoint.read(path)


def test_every_single_byte_flip_is_detected(tmp_path):
    # The digest covers tensors and all metadata fields; any other header byte (length prefix,
    # JSON syntax, padding) breaks the parse, since neither flip turns ASCII into whitespace.
    path = tmp_path / "small.ckpt"
    checkpoint.write(path, {"w": np.arange(6, dtype=np.float32), "m": np.array([True, False])},
                     {"epoch": 3, "lr": 0.5})
    data = path.read_bytes()
    bad_path = tmp_path / "bad.ckpt"
    for pos in range(len(data)):
        for mask in (0x01, 0xFF):
            bad = bytearray(data)
            bad[pos] ^= mask
            bad_path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError):
                checkpoint.read(bad_path)


def test_random_bytes_and_text_are_not_checkpoints(tmp_path):
    rng = np.random.default_rng(5)
    for name, content in (("random.bin", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()),
                          ("notes.txt", b"epoch,loss\n0,1.5\n1,0.9\n"),
                          ("json.json", b'{"a": 1}')):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="not a safetensors file"):
            checkpoint.read(path)


def test_plain_safetensors_is_not_a_trainart_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(st_save({"w": np.ones(3, dtype=np.float32)}))
    with pytest.raises(CheckpointError, match="not a trainart checkpoint"):
        checkpoint.read(path)
    path.write_bytes(st_save({"w": np.ones(3, dtype=np.float32)}, metadata={"format": "pt"}))
    with pytest.raises(CheckpointError, match="not a trainart checkpoint"):
        checkpoint.read(path)


@pytest.mark.parametrize("version", ["2", "0", "1.0", "x"])
def test_unsupported_format_version(tmp_path, version):
    tensors = {"w": np.ones(3, dtype=np.float32)}
    meta_json = json.dumps({"epoch": 1})
    md = {"format": "trainart.checkpoint", "format_version": version, "trainart_version": "9.9",
          "meta": meta_json}
    md["sha256"] = checkpoint._digest(tensors, md)
    path = tmp_path / "future.ckpt"
    path.write_bytes(st_save(tensors, metadata=md))
    with pytest.raises(CheckpointError, match=f"format version '{version}'.*reads version 1"):
        checkpoint.read(path)
    md["format_version"] = "1"   # the same file at the right version reads fine
    md["sha256"] = checkpoint._digest(tensors, md)
    path.write_bytes(st_save(tensors, metadata=md))
    assert checkpoint.read(path)[1] == {"epoch": 1}


def test_missing_checksum_fields(tmp_path):
    path = tmp_path / "nosha.ckpt"
    path.write_bytes(st_save({"w": np.ones(2)}, metadata={"format": "trainart.checkpoint",
                                                           "format_version": "1"}))
    with pytest.raises(CheckpointError, match="lacks 'meta' or 'sha256'"):
        checkpoint.read(path)


def test_trailing_bytes_are_rejected(tmp_path, ckpt):
    path = tmp_path / "tail.ckpt"
    path.write_bytes(ckpt.read_bytes() + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="unexpected bytes"):
        checkpoint.read(path)


def test_split_and_join_arrays_through_a_file(tmp_path):
    state = {"callbacks": [{"wait": 2, "best": 0.5,
                            "best_weights": [np.ones((2, 2)), np.zeros(2, dtype=np.float32)]},
                           {"keys": None}],
             "history": {"step_losses": [np.array([1.0, 0.5]), np.empty(0)]}}
    json_part, tensors = checkpoint.split_arrays(state, prefix="state/")
    assert sorted(tensors) == ["state/callbacks/0/best_weights/0",
                               "state/callbacks/0/best_weights/1",
                               "state/history/step_losses/0", "state/history/step_losses/1"]
    checkpoint.write(tmp_path / "s.ckpt", tensors, {"state": json_part})
    t, meta = checkpoint.read(tmp_path / "s.ckpt")
    back = checkpoint.join_arrays(meta["state"], t)
    w = back["callbacks"][0]["best_weights"]
    np.testing.assert_array_equal(w[0], np.ones((2, 2)))
    assert w[1].dtype == np.float32
    assert back["callbacks"][0]["wait"] == 2 and back["callbacks"][1] == {"keys": None}
    assert back["history"]["step_losses"][1].shape == (0,)
    with pytest.raises(CheckpointError, match="lacks tensor"):
        checkpoint.join_arrays(meta["state"], {})
    with pytest.raises(ValueError, match="reserved key"):
        checkpoint.split_arrays({"a": {"__ndarray__": 1}})


def test_split_arrays_escapes_the_separator_in_keys(tmp_path):
    # "val/loss" next to {"val": {"loss": ...}} (and "~", the escape character, next to its
    # escaped forms) must give distinct tensors, or one array silently replaces the other.
    state = {"val/loss": np.array([1.0, 2.0]), "val": {"loss": np.array([9.0])},
             "a~1b": np.array([3.0]), "a/b": np.array([4.0]), "a~b": [np.array([5.0])], "~": np.array([6.0])}
    json_part, tensors = checkpoint.split_arrays(state, prefix="s/")
    assert len(tensors) == 6
    checkpoint.write(tmp_path / "s.ckpt", tensors, {"state": json_part})
    t, meta = checkpoint.read(tmp_path / "s.ckpt")
    back = checkpoint.join_arrays(meta["state"], t)
    assert back.keys() == state.keys() and back["val"].keys() == {"loss"}
    for k in ("val/loss", "a~1b", "a/b", "~"):
        np.testing.assert_array_equal(back[k], state[k])
    np.testing.assert_array_equal(back["val"]["loss"], [9.0])
    np.testing.assert_array_equal(back["a~b"][0], [5.0])
    with pytest.raises(ValueError, match="two arrays at the path"):  # keys equal as strings
        checkpoint.split_arrays({1: np.zeros(1), "1": np.ones(1)})


def test_callback_state_with_slashes_in_keys_survives_a_trainer_checkpoint(tmp_path):
    class Tracker(trainart.callbacks.Callback):
        def __init__(self, state=None):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, state):
            self.state = state
            self._loaded = True

    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3))
    y = (X[:, 0] > 0).astype(int)
    t = trainart.Trainer(trainart.MLP([3, 4, 2]), executor="numpy")
    state = {"val/loss": np.array([0.25]), "val": {"loss": np.array([7.0])}}
    t.fit(X, y, epochs=1, verbose=0,
          callbacks=[Tracker(state), trainart.callbacks.ModelCheckpoint(tmp_path / "t.ckpt")])
    tracker = Tracker()
    trainart.Trainer.load(tmp_path / "t.ckpt").fit(X, y, epochs=2, initial_epoch=1, verbose=0,
                                                   callbacks=[tracker])
    np.testing.assert_array_equal(tracker.state["val/loss"], [0.25])
    np.testing.assert_array_equal(tracker.state["val"]["loss"], [7.0])


@pytest.mark.parametrize("executor", ["tpu", "", 3])
def test_load_checks_the_executor_argument_before_reading(tmp_path, executor):
    # A bad argument is the caller's error (ValueError naming it, as Trainer() raises), not the
    # file's (CheckpointError); it is caught before the file is even read.
    path = tmp_path / "m.ckpt"
    trainart.Trainer(trainart.MLP([3, 4, 2]), executor="numpy").save(path)
    for p in (path, tmp_path / "missing.ckpt"):
        with pytest.raises(ValueError, match="executor must be one of") as info:
            trainart.Trainer.load(p, executor=executor)
        assert not isinstance(info.value, CheckpointError)
    assert trainart.Trainer.load(path, executor="numpy").executor == "numpy"


def test_save_refuses_the_non_finite_state_that_load_refuses(tmp_path):
    # An SGD step of lr 3e38 overflows the weights from a finite loss and gradient; save wrote a
    # file that load then refused (CheckpointError), now it refuses to write it.
    rng = np.random.default_rng(0)
    X, y = 10 * rng.normal(size=(16, 3)).astype(np.float32), rng.integers(0, 2, 16)
    t = trainart.Trainer(trainart.MLP([3, 4, 2]), optimizer=trainart.optim.SGD(lr=3e38), executor="numpy")
    try:
        t.fit(X, y, epochs=3, batch_size=16, verbose=0)
    except trainart.TrainingDiverged:
        pass
    assert not all(np.isfinite(p).all() for p in t.get_params())
    with pytest.raises(ValueError, match=r"cannot save: params\[\d\] contains NaN or inf"):
        t.save(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()


def test_a_checksummed_file_with_a_malformed_state_is_a_checkpoint_error(tmp_path):
    # A list for history.history raised a bare AttributeError; a step of 10**30 loaded.
    import trainart as ta
    from trainart import checkpoint as ck

    trainer = ta.Trainer(ta.MLP([2, 2]), executor="numpy")
    tensors, meta = trainer._snapshot()
    for bad in (dict(meta, state=dict(meta["state"], history={"history": []})), dict(meta, step=10**30)):
        ck.write(tmp_path / "bad.ckpt", tensors, bad)
        with pytest.raises(ta.CheckpointError, match="not a loadable trainart Trainer checkpoint"):
            ta.Trainer.load(tmp_path / "bad.ckpt")


def with_header(data, header):
    """`data` with its safetensors header replaced by the bytes `header` (length prefix redone)."""
    return struct.pack("<Q", len(header)) + header + data[header_end(data):]


@pytest.mark.parametrize("offsets", ["[0,1e400]", "[0,24.0]", "[0,true]", "[false,24]", "[0,-24]",
                                     "[24,0]", "[0]", "24", "null"])
def test_data_offsets_must_be_two_ordered_integers(tmp_path, offsets):
    # One altered digit can make "1e8024", which json reads as inf: int(inf) raised OverflowError.
    path = tmp_path / "w.ckpt"
    checkpoint.write(path, {"w": np.arange(6, dtype=np.float32)}, {})
    data = path.read_bytes()
    header = data[8:header_end(data)]
    assert header.count(b'"data_offsets":[0,24]') == 1
    path.write_bytes(with_header(data, header.replace(b"[0,24]", offsets.encode())))
    with pytest.raises(CheckpointError, match="'w' has no valid data_offsets"):
        checkpoint.read(path)


def test_a_deeply_nested_header_is_a_checkpoint_error(tmp_path):
    # json.loads raised RecursionError.
    path = tmp_path / "deep.ckpt"
    body = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(CheckpointError, match="JSON header is damaged"):
        checkpoint.read(path)


def test_a_deeply_nested_meta_is_a_checkpoint_error(tmp_path):
    tensors = {"w": np.ones(2)}
    md = {"format": "trainart.checkpoint", "format_version": "1", "trainart_version": "x",
          "meta": "[" * 100_000 + "]" * 100_000}
    md["sha256"] = checkpoint._digest(tensors, md)
    path = tmp_path / "deep.ckpt"
    path.write_bytes(st_save(tensors, metadata=md))
    with pytest.raises(CheckpointError, match="meta is not valid JSON"):
        checkpoint.read(path)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
@pytest.mark.parametrize("proc_status", [True, False], ids=["proc", "os.umask"])
def test_file_mode_follows_the_umask_and_an_overwrite_keeps_it(tmp_path, monkeypatch, proc_status):
    # mkstemp makes 0600 files, and os.replace kept that whatever the umask or the old file's mode.
    if not proc_status:  # the umask as read where there is no /proc
        def no_proc(*args, **kwargs):
            raise OSError("no /proc here (simulated)")

        from trainart import _atomic

        monkeypatch.setattr(_atomic, "open", no_proc, raising=False)
    path = tmp_path / "m.ckpt"
    old = os.umask(0o027)
    try:
        checkpoint.write(path, {"x": np.ones(3)}, {})
        assert os.stat(path).st_mode & 0o777 == 0o640
        assert os.umask(0o027) == 0o027  # the umask read was put back
        os.chmod(path, 0o604)
        checkpoint.write(path, {"x": np.zeros(3)}, {})
        assert os.stat(path).st_mode & 0o777 == 0o604
    finally:
        os.umask(old)
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]


def test_writing_over_a_folder_names_the_path_not_a_temporary_file(tmp_path):
    path = tmp_path / "run.ckpt"
    path.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        checkpoint.write(path, {"x": np.ones(3)}, {})
    assert info.value.filename == str(path) and ".tmp" not in str(info.value)
    assert "folder" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"] and os.listdir(path) == []


def test_writes_of_the_same_state_are_byte_identical(tmp_path):
    # safetensors wrote __metadata__ from a Rust HashMap, in a new order at every write.
    blobs = set()
    for i in range(6):
        checkpoint.write(tmp_path / f"{i}.ckpt", mixed_tensors(), META)
        blobs.add((tmp_path / f"{i}.ckpt").read_bytes())
    assert len(blobs) == 1
    t = trainart.Trainer(trainart.MLP([3, 4, 2]), executor="numpy")
    t.save(tmp_path / "a.ckpt")
    t.save(tmp_path / "b.ckpt")
    trainart.Trainer.load(tmp_path / "a.ckpt").save(tmp_path / "c.ckpt")
    assert (tmp_path / "a.ckpt").read_bytes() == (tmp_path / "b.ckpt").read_bytes() == \
        (tmp_path / "c.ckpt").read_bytes()


def test_the_written_layout_is_sorted_padded_and_aligned(ckpt):
    data = ckpt.read_bytes()
    end = header_end(data)
    assert end % 8 == 0
    text = data[8:end].decode()
    header, stripped = json.loads(text), text.rstrip(" ")
    assert stripped == json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert len(text) - len(stripped) < 8   # padded only up to the next multiple of 8
    spans = sorted((spec["data_offsets"], name) for name, spec in header.items() if name != "__metadata__")
    position = 0
    for (begin, stop), name in spans:   # contiguous, each tensor at a multiple of its itemsize
        assert begin == position and begin % np.dtype(mixed_tensors()[name].dtype).itemsize == 0, name
        position = stop
    assert end + position == len(data)


def test_written_files_read_with_the_safetensors_library(ckpt):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    want = mixed_tensors()
    got = load_file(ckpt)
    assert set(got) == set(want)
    for name, arr in want.items():
        assert got[name].dtype == arr.dtype.newbyteorder("<") and got[name].shape == arr.shape, name
        np.testing.assert_array_equal(got[name], arr, err_msg=name)
    with safe_open(ckpt, "np") as f:
        md = f.metadata()
        np.testing.assert_array_equal(f.get_tensor("strided"), want["strided"])
    assert md["format"] == "trainart.checkpoint" and json.loads(md["meta"])["epoch"] == 17


def test_files_the_safetensors_library_writes_are_read(tmp_path, ckpt):
    # The same tensors and metadata, laid out by the library's own writer.
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(ckpt, "np") as f:
        md = f.metadata()
    path = tmp_path / "library.ckpt"
    save_file(load_file(ckpt), path, metadata=md)
    tensors, meta = checkpoint.read(path)
    want, meta_want = checkpoint.read(ckpt)
    assert json.dumps(meta, sort_keys=True) == json.dumps(meta_want, sort_keys=True)  # NaN != NaN
    assert set(tensors) == set(want)
    for name, arr in want.items():
        assert tensors[name].dtype == arr.dtype, name
        np.testing.assert_array_equal(tensors[name], arr, err_msg=name)


def _tiny_trainer():
    return trainart.Trainer(trainart.MLP([3, 4, 2]), executor="numpy")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_save_never_replaces_a_fifo_or_device_and_load_never_reads_one(tmp_path):
    # os.replace put the checkpoint in place of whatever was there: as root, save("/dev/null")
    # replaced /dev/null with a regular file; load("/dev/zero") read until memory ran out.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="replaces only a regular file"):
        _tiny_trainer().save(fifo)
    assert not fifo.is_file() and os.listdir(tmp_path) == ["fifo"]
    for path in (fifo, "/dev/zero"):
        with pytest.raises(CheckpointError, match="is not a regular file"):
            trainart.Trainer.load(path)


def test_save_errors_name_the_path_not_the_temporary_file(tmp_path):
    # save('') made its temporary file in the parent folder and failed naming it; a name of
    # 242-255 characters, which open() takes, failed on the temporary name's 14 more.
    t = _tiny_trainer()
    for path in ("", str(tmp_path) + os.sep):
        with pytest.raises(ValueError, match="path must name a file"):
            t.save(path)
    long = tmp_path / ("c" * 250)
    t.save(long)
    assert trainart.Trainer.load(long).config() == t.config()
    with pytest.raises(OSError) as info:
        t.save(tmp_path / ("c" * 256))
    assert info.value.filename == str(tmp_path / ("c" * 256))
    assert sorted(os.listdir(tmp_path)) == ["c" * 250]  # no temporary file left


def test_save_over_a_file_this_user_may_not_write_is_refused(tmp_path, monkeypatch):
    # os.replace needs only the folder's write permission: a checkpoint made read-only
    # (chmod a-w) was replaced anyway, where open() and torch.save refuse. (As root the mode
    # bits do not stop open(); the refusal of open itself stands in for them here.)
    from trainart import _atomic

    path = tmp_path / "best.ckpt"
    _tiny_trainer().save(path)
    before = path.read_bytes()
    real_open = _atomic.os.open

    def read_only(p, flags, *args):
        if os.fspath(p) == str(path) and flags & os.O_WRONLY:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(p, flags, *args)

    monkeypatch.setattr(_atomic.os, "open", read_only)
    with pytest.raises(PermissionError, match="cannot replace a file this user may not write"):
        trainart.Trainer(trainart.MLP([3, 5, 2]), executor="numpy").save(path)
    assert path.read_bytes() == before
