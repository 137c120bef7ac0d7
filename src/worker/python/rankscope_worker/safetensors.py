"""The safetensors format, read and written with numpy alone (no `safetensors` package):
8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
the raw little-endian bytes. bfloat16 has no numpy dtype, so it travels as uint16 bits."""
import json
import struct

import numpy as np

_NUMPY = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}
_CODE = {np.dtype(v): k for k, v in _NUMPY.items() if k != "BF16"}


class SafetensorsError(ValueError):
    pass


def read(path):
    """Returns ({name: (dtype_code, np.ndarray)}, metadata). Arrays are views of one buffer."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise SafetensorsError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        code = info["dtype"]
        if code not in _NUMPY:
            raise SafetensorsError(f"{path}: tensor {name!r} has unsupported dtype {code}")
        begin, end = info["data_offsets"]
        if end > len(data) or begin > end:
            raise SafetensorsError(f"{path}: tensor {name!r} data runs past the end of the file")
        arr = np.frombuffer(data[begin:end], dtype=_NUMPY[code]).reshape(info["shape"])
        out[name] = (code, arr)
    return out, meta


def write(path, tensors, metadata=None):
    """tensors: {name: np.ndarray} or {name: (dtype_code, np.ndarray)} (the tuple form carries BF16)."""
    header = {}
    chunks = []
    offset = 0
    for name, value in tensors.items():
        code, arr = value if isinstance(value, tuple) else (_CODE[np.dtype(value.dtype)], value)
        raw = np.ascontiguousarray(arr).astype(np.dtype(arr.dtype).newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)  # keep tensor data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)
