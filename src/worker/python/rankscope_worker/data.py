"""Training/validation arrays from .npz files (numpy only), with the NTU RGB+D preset.

Spec (from the start message's `data`): {path, trainX, trainY, valX, valY, valPath?, preset?}.
Labels are class indices (N,) or one-hot (N, classes). The NTU preset turns x (N, T, 150) =
T frames × (2 persons × 25 joints × 3 coords) into the CTR-GCN layout (N, 3, T', 25, 2) with the
same resampling as src/core/eval/ntu.ts (a test checks the two agree)."""
import numpy as np


class DataError(ValueError):
    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


def _stored_member(path, key):
    """An uncompressed .npz member as a read-only memmap (NTU training sets are many GB);
    None when the member is compressed (then numpy reads it whole)."""
    import struct
    import zipfile
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        offset = f.tell()
    if dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _load(path, key):
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise DataError(f"{path} has no array {key!r} (it has {', '.join(z.files)})",
                                "Name the arrays with --train-x/--train-y/--val-x/--val-y.")
            if path.endswith(".npz"):
                try:
                    mapped = _stored_member(path, key)
                except (ValueError, OSError, KeyError):
                    mapped = None
                if mapped is not None:
                    return mapped
            return z[key]
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}")


def ntu_to_model(x, frames, crop=0.95, resample="linear"):
    """(N, S, 150) -> (N, 3, frames, 25, 2) exactly as src/core/eval/ntu.ts (CTR-GCN's test-time
    feeder): count the valid frames (non-zero sum), centre-crop them to `crop`, resize to `frames`
    by linear interpolation (torch's align_corners=False source index, float32 arithmetic) or,
    for 'uniform', take the nearest evenly spaced frame."""
    n = x.shape[0]
    out = np.zeros((n, frames, 150), np.float32)
    valid_counts = (x.astype(np.float64).sum(axis=2) != 0).sum(axis=1)
    t = np.arange(frames)
    for i in range(n):
        valid = int(valid_counts[i])
        if valid == 0:
            continue  # an empty clip stays zeros
        bias = int((1 - crop) * valid / 2)
        length = valid - 2 * bias
        if resample == "uniform":
            i0 = np.minimum(length - 1, np.floor((t + 0.5) * length / frames)).astype(np.int64)
            i1, l1 = i0, np.zeros(frames)
        else:
            scale = np.float32(length / frames)
            s = np.maximum(np.float32(0), (scale * (t + 0.5).astype(np.float32)).astype(np.float32) - np.float32(0.5))
            i0 = s.astype(np.int64)
            i1 = np.where(i0 < length - 1, i0 + 1, i0)
            l1 = (s - i0.astype(np.float32)).astype(np.float32).astype(np.float64)
        a = x[i, bias + i0].astype(np.float64)
        b = x[i, bias + i1].astype(np.float64)
        out[i] = ((1 - l1)[:, None] * a + l1[:, None] * b).astype(np.float32)
    return np.ascontiguousarray(out.reshape(n, frames, 2, 25, 3).transpose(0, 4, 1, 3, 2))


def to_model_layout(x, preset, input_shape, ntu=None):
    if preset != "ntu":
        return x
    if x.ndim != 3 or x.shape[2] != 150:
        raise DataError(f"the NTU preset needs x shaped (N, T, 150); got {tuple(x.shape)}")
    ntu = ntu or {}
    frames = ntu.get("frames") or (input_shape[2] if input_shape and isinstance(input_shape[2], int) else x.shape[1])
    return ntu_to_model(x, int(frames), float(ntu.get("crop", 0.95)), ntu.get("resample", "linear"))


def labels(y, name):
    if y.ndim == 2:
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim == 1:
        return y.astype(np.int64)
    raise DataError(f"labels {name} must be class indices (N,) or one-hot (N, classes); got {tuple(y.shape)}")


class Split:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)


def load(spec, input_info):
    """Returns (train, val) Splits with x already in the model's layout, checked against it."""
    shape = input_info.get("shape")
    preset = spec.get("preset")
    out = []
    for split, xk, yk, default_x, default_y in (("train", "trainX", "trainY", "x_train", "y_train"),
                                               ("val", "valX", "valY", "x_test", "y_test")):
        path = spec.get("valPath") or spec["path"] if split == "val" else spec["path"]
        xname, yname = spec.get(xk) or default_x, spec.get(yk) or default_y
        x = to_model_layout(_load(path, xname), preset, shape, spec.get("ntu"))
        y = labels(_load(path, yname), yname)
        if len(x) != len(y):
            raise DataError(f"{xname} has {len(x)} samples but {yname} has {len(y)}")
        if shape is not None:
            want = shape[1:]
            if len(want) != x.ndim - 1 or any(isinstance(w, int) and w > 0 and w != g
                                               for w, g in zip(want, x.shape[1:])):
                pretty = ", ".join(str(w) if w is not None else "?" for w in shape)
                raise DataError(
                    f"{xname} in {path} has shape {tuple(x.shape)}, but the model input "
                    f"'{input_info['name']}' expects (batch, {pretty.split(', ', 1)[1] if ', ' in pretty else ''})",
                    "Check --data, or use --preset ntu for NTU RGB+D arrays (N, 300, 150).")
        if not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{xname} must hold floats; it holds {x.dtype}")
        out.append(Split(x.astype(np.float32, copy=False), y))
    return out[0], out[1]
