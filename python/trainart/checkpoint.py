"""The one-file checkpoint format (DESIGN §6): a safetensors file whose string metadata carries
the JSON state, the format version, the library version and a SHA-256 over everything."""

import errno
import hashlib
import json
import numbers
import os
import reprlib
import stat
import struct

import numpy as np
from safetensors.numpy import load as _st_load

from . import _validate
from ._atomic import atomic_write
from .errors import CheckpointError

FORMAT_NAME = "trainart.checkpoint"
FORMAT_VERSION = 1

# The dtypes safetensors.numpy writes and reads back exactly (complex is left out on purpose:
# trainart has no complex state and DESIGN §6 rejects complex input everywhere).
SUPPORTED_DTYPES = tuple(np.dtype(t) for t in (
    np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_))

# The safetensors spelling of each supported dtype, for the header `write` makes.
_ST_DTYPES = {np.dtype(t): name for t, name in (
    (np.float16, "F16"), (np.float32, "F32"), (np.float64, "F64"), (np.int8, "I8"), (np.int16, "I16"),
    (np.int32, "I32"), (np.int64, "I64"), (np.uint8, "U8"), (np.uint16, "U16"), (np.uint32, "U32"),
    (np.uint64, "U64"), (np.bool_, "BOOL"))}

# Placeholder split_arrays leaves in JSON where an array was.
_ARRAY_KEY = "__ndarray__"

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_DTYPES", "join_arrays", "read",
           "split_arrays", "write"]


# ----------------------------------------------------------------------------------- writing

def write(path, tensors, meta):
    """Write `tensors` and `meta` to one checkpoint file at `path`, atomically.

    The file is a safetensors file. Its ``__metadata__`` (string to string) holds:
    ``format`` = ``"trainart.checkpoint"``, ``format_version`` = ``"1"``,
    ``trainart_version``, ``meta`` = ``json.dumps(meta, sort_keys=True)`` and ``sha256`` =
    the hex SHA-256 of, in sorted name order, each tensor's ``[name, dtype, shape]`` JSON and
    its little-endian C-order bytes, then the JSON (sorted keys) of the four other metadata
    fields, each piece prefixed by its length as a little-endian uint64. The digest covers
    every tensor and metadata value; any other byte (length prefix, JSON syntax, padding)
    breaks the parse when altered.

    The same tensors and meta give the same bytes: the header is JSON with sorted keys and no
    spaces, padded with spaces to a multiple of 8 bytes (as the safetensors format allows), and
    the tensors' bytes follow largest itemsize first, then by name, so each starts at a multiple
    of its itemsize.

    The bytes go to a temporary file in the folder of `path`, which is flushed and fsynced,
    then ``os.replace``d onto `path`; the folder is fsynced where the OS allows it. On any
    failure the temporary file is removed and an existing `path` is left as it was. The file
    gets the permission bits of the file it replaces, or ``0o666 & ~umask`` when new, as
    ``open()`` would give it.

    Args:
        path: file to write (str or os.PathLike); its folder must exist.
        tensors: dict of str name -> numpy array of a dtype in SUPPORTED_DTYPES (any memory
            layout; stored C-ordered, little-endian). The name ``"__metadata__"`` is reserved.
        meta: dict with str keys of JSON-able values: dict (str keys), list, tuple (stored as
            list), str, int, float, bool, None, and NumPy scalars (stored as Python numbers).
            Floats may be NaN or +-inf (written as Python's json writes them, NaN, Infinity
            and -Infinity: tokens that strict JSON parsers refuse inside the ``meta`` string).

    Raises:
        TypeError: a tensor or meta value of the wrong type (the message names it).
        ValueError: a reserved or empty tensor name; a path that names no file.
        FileNotFoundError: the folder of `path` does not exist (the message names both).
        IsADirectoryError: `path` is a folder.
        PermissionError: `path` is a file this user may not write (as open() refuses it).
        OSError: `path` is not a regular file (a device, a FIFO), or the file could not be
            written; the message names `path`.
    """
    path = os.fspath(path)
    # The errors of mkstemp and os.replace would name the temporary file instead of `path`.
    if not os.path.basename(path):
        raise ValueError(f"path must name a file to write the checkpoint to, got {path!r} (a folder or nothing)")
    _validate.require_folder(path, "checkpoint.write")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "checkpoint.write cannot write a file over a folder", path)
    arrays = _check_tensors(tensors)
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    meta_json = json.dumps(_jsonable(meta, "meta"), sort_keys=True, allow_nan=True)
    from . import __version__

    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "trainart_version": __version__,
        "meta": meta_json,
    }
    header["sha256"] = _digest(arrays, header)
    atomic_write(path, _safetensors_pieces(arrays, header))


def _check_tensors(tensors):
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict of name -> numpy array, got {type(tensors).__name__}")
    out = {}
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r}")
        if name == "" or name == "__metadata__":
            raise ValueError(f"tensor name {name!r} is reserved or empty")
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"tensors[{name!r}] must be a numpy array, got {type(arr).__name__}")
        if arr.dtype.newbyteorder("=") not in SUPPORTED_DTYPES:
            raise TypeError(f"tensors[{name!r}] has unsupported dtype {arr.dtype}; expected one of "
                            f"{', '.join(d.name for d in SUPPORTED_DTYPES)}")
        # safetensors reads raw memory: it needs C order, and we hash little-endian bytes.
        out[name] = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
    return out


def _jsonable(value, where):
    """A copy of `value` made of plain JSON types, or TypeError naming the offending key."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        return float(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-str key {k!r}; JSON keys must be str")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    hint = " (put arrays in tensors, or use split_arrays)" if isinstance(value, np.ndarray) else ""
    raise TypeError(f"{where} is not JSON-able: {type(value).__name__}{hint}")


def _digest(arrays, fields):
    """SHA-256 hex of the tensors (sorted by name) and the metadata `fields` but sha256."""
    h = hashlib.sha256()

    def piece(b):
        h.update(struct.pack("<Q", len(b)))
        h.update(b)

    for name in sorted(arrays):
        arr = arrays[name]
        piece(json.dumps([name, arr.dtype.name, list(arr.shape)]).encode())
        piece(arr.tobytes())
    fields = {k: v for k, v in fields.items() if k != "sha256"}
    piece(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


def _safetensors_pieces(arrays, metadata):
    """The bytes of a safetensors file of `arrays` (little-endian, C-ordered) and the
    string-to-string `metadata`, as a list of buffers to write one after the other: the 8-byte
    little-endian header length, the header, then each tensor's bytes. The safetensors library's
    own writer takes the metadata from a hash map, whose order changes from call to call."""
    order = sorted(arrays, key=lambda name: (-arrays[name].dtype.itemsize, name))
    header, offset = {"__metadata__": metadata}, 0
    for name in order:
        arr = arrays[name]
        header[name] = {"dtype": _ST_DTYPES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the data then starts 8-aligned (8-byte length + header)
    return [struct.pack("<Q", len(text)), text] + [arrays[name].reshape(-1).view(np.uint8) for name in order]


# ----------------------------------------------------------------------------------- reading

def read(path):
    """Read a checkpoint written by `write`, verifying it completely.

    Args:
        path: the file (str or os.PathLike).

    Returns:
        (tensors, meta): dict of name -> writeable numpy array (native byte order), and the
        meta dict as `write` stored it (tuples come back as lists, NumPy scalars as Python
        numbers).

    Raises:
        FileNotFoundError: `path` does not exist (kept as the OSError open() raises, so a
            missing file is told apart from a damaged one).
        CheckpointError: the file is empty or truncated, not a safetensors file, a safetensors
            file that is not a trainart checkpoint, of an unsupported format version, or its
            bytes were altered (SHA-256 mismatch). The message says which, and names `path`.
    """
    path = os.fspath(path)
    kind = os.stat(path).st_mode  # a missing file: FileNotFoundError, as open() raises
    if not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):  # a FIFO would block, /dev/zero read forever
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    with open(path, "rb") as f:  # a folder: IsADirectoryError naming it
        data = f.read()
    header = _parse_header(data, path)
    md = header.get("__metadata__")
    if not isinstance(md, dict) or md.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is a safetensors file but not a trainart checkpoint "
                              f"(no format={FORMAT_NAME!r} in its metadata)")
    version = md.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this trainart "
            f"reads version {FORMAT_VERSION} (written by trainart {md.get('trainart_version', '?')})")
    meta_json, sha = md.get("meta"), md.get("sha256")
    if not isinstance(meta_json, str) or not isinstance(sha, str):
        raise CheckpointError(f"{path} is damaged: its metadata lacks 'meta' or 'sha256'")

    try:
        loaded = _st_load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError (and others)
        raise CheckpointError(f"{path} is damaged: safetensors could not read it ({exc})") from None
    if _digest(loaded, md) != sha:
        raise CheckpointError(f"{path} is damaged: SHA-256 mismatch (bytes were altered)")
    try:
        meta = json.loads(meta_json)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path} is damaged: its meta is not valid JSON") from None
    tensors = {name: np.array(arr, dtype=arr.dtype.newbyteorder("="), copy=True)
               for name, arr in loaded.items()}
    return tensors, meta


def _parse_header(data, path):
    """The safetensors header dict, after checking the file holds all the bytes it declares."""
    n = len(data)
    if n == 0:
        raise CheckpointError(f"{path} is empty (truncated checkpoint?)")
    if n < 8:
        raise CheckpointError(f"{path} is truncated: {n} bytes, shorter than a safetensors header")
    (hlen,) = struct.unpack("<Q", data[:8])
    looks_like_header = data[8:9] == b"{"
    if not looks_like_header:
        raise CheckpointError(f"{path} is not a safetensors file (no JSON header after the "
                              "8-byte length)")
    if 8 + hlen > n:
        raise CheckpointError(f"{path} is truncated or damaged: its header declares {hlen} bytes but the "
                              f"file has {n - 8} after the length prefix")
    try:
        header = json.loads(data[8:8 + hlen])
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
        raise CheckpointError(f"{path} is not a readable safetensors file (its JSON header is "
                              "damaged)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file (header is not a JSON object)")
    end = max((_data_offsets(spec, name, path)[1] for name, spec in header.items()
               if name != "__metadata__"), default=0)
    have = n - 8 - hlen
    if have < end:
        raise CheckpointError(f"{path} is truncated: its tensors need {end} data bytes, the file "
                              f"has {have}")
    if have > end:
        raise CheckpointError(f"{path} is damaged: {have - end} unexpected bytes after the data")
    return header


def _data_offsets(spec, name, path):
    """A tensor's [begin, end] data offsets: two JSON integers, 0 <= begin <= end. A float is
    refused rather than rounded (one altered digit can make "1e8024", which JSON reads as inf)."""
    offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise CheckpointError(f"{path} is damaged: tensor {name!r} has no valid data_offsets (two "
                              f"integers 0 <= begin <= end), got {reprlib.repr(offsets)}")
    return offsets


# ------------------------------------------------------------------- state with arrays inside

def split_arrays(state, prefix=""):
    """Separate the NumPy arrays of a nested state into checkpoint tensors.

    Each array in `state` (dicts, lists and tuples nested to any depth) becomes a tensor named
    ``prefix + its path`` (keys and indices joined by ``"/"``, with ``"~"`` in a key written
    ``"~0"`` and ``"/"`` written ``"~1"``, as in a JSON Pointer, RFC 6901, so ``{"a/b": x}`` and
    ``{"a": {"b": y}}`` get different names), and is replaced in the returned JSON part by
    ``{"__ndarray__": name}``. `join_arrays` undoes it exactly (it reads the names from the
    JSON part, so files written before the escaping load too). This is how a
    `state_dict()` holding arrays (callbacks, history, optimizer) goes into `write`.

    Args:
        state: the nested value.
        prefix: prepended to every tensor name (give each state its own prefix).

    Returns:
        (json_part, tensors).

    Raises:
        ValueError: a dict in `state` already uses the key ``"__ndarray__"``, or two arrays
            have one path (keys equal as strings, such as 1 and "1").
    """
    tensors = {}

    def walk(v, keys):
        if isinstance(v, np.ndarray):
            name = prefix + "/".join(keys) if (prefix or keys) else "_"
            if name in tensors:  # keys equal as strings, e.g. 1 and "1" (JSON merges them too)
                raise ValueError(f"state has two arrays at the path {name!r}; give them distinct keys")
            tensors[name] = v
            return {_ARRAY_KEY: name}
        if isinstance(v, dict):
            if _ARRAY_KEY in v:
                raise ValueError(f"state at {'/'.join(keys)!r} uses the reserved key {_ARRAY_KEY!r}")
            return {k: walk(x, keys + [_escape(str(k))]) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, keys + [str(i)]) for i, x in enumerate(v)]
        return v

    return walk(state, []), tensors


def _escape(key):
    """A path segment for `key` that holds no "/" (JSON Pointer's escaping: "~" first)."""
    return key.replace("~", "~0").replace("/", "~1")


def join_arrays(json_part, tensors):
    """Put the arrays `split_arrays` took out back in place.

    Raises:
        CheckpointError: a placeholder names a tensor that `tensors` lacks.
    """
    def walk(v):
        if isinstance(v, dict):
            if set(v) == {_ARRAY_KEY}:
                name = v[_ARRAY_KEY]
                if name not in tensors:
                    raise CheckpointError(f"checkpoint lacks tensor {name!r} named by its state")
                return tensors[name]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(json_part)
