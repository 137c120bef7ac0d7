"""Training, validation and test arrays from .npz files (numpy only), with the NTU RGB+D preset.

Spec (from the start message's `data`): {path, trainX, trainY, valX, valY, valPath, testX, testY,
subjects, preset, ntu}. Labels are class indices (N,) or one-hot (N, classes). The NTU preset turns
x (N, T, 150) = T frames × (2 persons × 25 joints × 3 coords) into the CTR-GCN layout
(N, 3, T', 25, 2) with the same resampling as src/core/eval/ntu.ts (a test checks the two agree).

Which split is which (issue 13 item 8): the best epoch is picked on a VALIDATION split held out
from the training arrays (a seeded `valFraction`; by subject when the training subjects are known —
the NTU preset reads them from `s_train`, as the bundled sample stores them — else stratified by
class); the TEST arrays (x_test, y_test) are scored once, at the end, with the best weights. A
separate validation file (`valPath`) or named validation arrays (`valX`/`valY`) replace the hold-out.
`load` returns the three splits and a JSON description of each, which the worker sends in `started`
and writes into summary.json."""
import os

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
    """Arrays of one split; `rows` selects the split's samples of the arrays (a hold-out shares the
    training arrays, which may be a memory map, instead of copying them)."""

    def __init__(self, x, y, rows=None):
        self.x, self.y, self.rows = x, y, rows

    def __len__(self):
        return len(self.rows) if self.rows is not None else len(self.y)

    def take(self, idx):
        """(x, y) of the split's samples `idx` (a slice or ascending positions)."""
        if self.rows is None:
            return self.x[idx], self.y[idx]
        rows = self.rows[idx]
        return self.x[rows], self.y[rows]


class Splits:
    def __init__(self, train, val, test, info):
        self.train, self.val, self.test, self.info = train, val, test, info


def _has(path, key):
    try:
        with np.load(path, allow_pickle=False) as z:
            return key in z.files
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}")


def _read(path, xname, yname, preset, input_info, ntu):
    """One pair of arrays, x in the model's layout, checked against the model input."""
    shape = input_info.get("shape")
    x = to_model_layout(_load(path, xname), preset, shape, ntu)
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
    return x.astype(np.float32, copy=False), y


def _rng(seed):
    # Its own stream (not the training permutation's): the split depends on the seed alone.
    return np.random.default_rng([int(seed), 0x5EED])


def hold_out_by_subject(subjects, fraction, seed):
    """Positions of the held-out samples: whole subjects in a seeded order until they make up
    `fraction` of the samples (at least one subject, never all). None with fewer than 2 subjects."""
    unique = np.unique(subjects)
    if len(unique) < 2:
        return None, []
    order = _rng(seed).permutation(unique)
    counts = {s: int(c) for s, c in zip(*np.unique(subjects, return_counts=True))}
    target, held, chosen = fraction * len(subjects), 0, []
    for s in order[:-1]:
        chosen.append(s)
        held += counts[s]
        if held >= target:
            break
    return np.flatnonzero(np.isin(subjects, chosen)), sorted(v.item() for v in chosen)


def hold_out_stratified(y, fraction, seed):
    """Positions of the held-out samples: round(fraction × n) of each class's n samples, seeded;
    a class with 2+ samples gives at least one and keeps at least one."""
    rng = _rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        held.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)


def _describe(path, xname, yname, n):
    return {"path": path, "arrays": [xname, yname], "samples": int(n)}


def load(spec, input_info, val_fraction=0.1, seed=0):
    """The training, validation and test Splits (test None when the data has none) with x in the
    model's layout, and `info`: where each split comes from (see the module doc)."""
    preset, ntu, path = spec.get("preset"), spec.get("ntu"), spec["path"]
    tx, ty = spec.get("trainX") or "x_train", spec.get("trainY") or "y_train"
    x, y = _read(path, tx, ty, preset, input_info, ntu)
    info = {}
    if spec.get("valPath") or spec.get("valX") or spec.get("valY"):
        vpath = spec.get("valPath") or path
        vx, vy = spec.get("valX") or "x_test", spec.get("valY") or "y_test"
        train, val = Split(x, y), Split(*_read(vpath, vx, vy, preset, input_info, ntu))
        info["validation"] = {"source": "file", **_describe(vpath, vx, vy, len(val))}
    else:
        held, info["validation"] = _hold_out(spec, path, y, tx, float(val_fraction), seed, preset)
        keep = np.ones(len(y), bool)
        keep[held] = False
        train, val = Split(x, y, np.flatnonzero(keep)), Split(x, y, held)
        info["validation"]["samples"] = len(val)
    info["train"] = _describe(path, tx, ty, len(train))
    test, info["test"] = _test_split(spec, path, preset, input_info, ntu, info["validation"])
    return Splits(train, val, test, info)


def _hold_out(spec, path, y, tx, fraction, seed, preset):
    """Validation held out from the training arrays: (positions held out, description)."""
    named = spec.get("subjects")
    subjects_key = named or ("s_train" if preset == "ntu" else None)
    base = {"source": "held-out", "path": path, "arrays": [tx, spec.get("trainY") or "y_train"], "fraction": fraction, "seed": int(seed)}
    note = None
    if subjects_key and _has(path, subjects_key):
        subjects = np.asarray(_load(path, subjects_key)).reshape(-1)
        if len(subjects) != len(y):
            raise DataError(f"{subjects_key} has {len(subjects)} subject ids but {tx} has {len(y)} samples",
                            "The subject array gives one id per training sample.")
        held, chosen = hold_out_by_subject(subjects, fraction, seed)
        if held is not None:
            desc = {**base, "by": "subject", "subjectArray": subjects_key, "subjects": chosen,
                    "subjectsTotal": int(len(np.unique(subjects)))}
            return held, desc
        note = f"{subjects_key} names one subject only, so none can be held out"
    elif named:
        raise DataError(f"{path} has no subject array {named!r}", "Name the array of training subject ids, or leave it out.")
    elif subjects_key:
        note = (f"{path} has no subject ids ({subjects_key}), so whole subjects cannot be held out: the validation "
                f"subjects also appear in training. Add {subjects_key} (one id per training sample) to hold out by subject.")
    held = hold_out_stratified(y, fraction, seed)
    if len(held) == 0:
        raise DataError(f"{len(y)} training samples are too few to hold out a validation split",
                        "Give a separate validation file (--val-data), or more training data.")
    desc = {**base, "by": "stratified", **({"note": note} if note else {})}
    return held, desc


def _test_split(spec, path, preset, input_info, ntu, validation):
    """The test split and its description; (None, {reason}) when there is none to score."""
    sx, sy = spec.get("testX") or "x_test", spec.get("testY") or "y_test"
    explicit = bool(spec.get("testX") or spec.get("testY"))
    if not explicit and not (_has(path, sx) and _has(path, sy)):
        return None, {"missing": f"{path} has no {sx}/{sy}"}
    if validation["source"] == "file" and os.path.realpath(validation["path"]) == os.path.realpath(path) \
            and validation["arrays"] == [sx, sy]:
        return None, {"missing": f"the validation arrays are the test arrays ({sx}, {sy}): "
                      "the best epoch was picked on them, so they give no independent test figure"}
    test = Split(*_read(path, sx, sy, preset, input_info, ntu))
    return test, _describe(path, sx, sy, len(test))
