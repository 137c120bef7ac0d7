"""Train a sample model on the procedural dataset with plain PyTorch on the CPU, then export ONNX.

Usage:
  /usr/bin/python3 scripts/sample/train.py --model transformer   # -> media/samples/skeleton-transformer.onnx
  /usr/bin/python3 scripts/sample/train.py --model catformer     # -> media/samples/skeleton-catformer.onnx

Splits: the test subjects are the data set's own (`x_test`); every fifth training subject
(VALIDATION_EVERY) is held out as validation. The epoch with the best validation top-1 is kept;
the test set is scored once, at the end, on that model.

Writes the ONNX model (opset 13, input `skeleton` (batch, 3, FRAMES, 25, 2), output `logits`
(batch, classes), dynamic batch) and `<model>.training.json` beside it (settings, split, time,
per-epoch loss and validation top-1, the chosen epoch's train / validation / test top-1).
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load, resample, valid_frame_count  # noqa: E402
from models import MODELS  # noqa: E402

FRAMES = 16
VALIDATION_EVERY = 5
DEFAULT_EPOCHS = {'transformer': 28, 'catformer': 30}
OUT_NAME = {'transformer': 'skeleton-transformer.onnx', 'catformer': 'skeleton-catformer.onnx'}


def validation_subjects(subjects):
    """Every VALIDATION_EVERY-th distinct training subject (sorted), starting with the third."""
    return sorted(set(int(s) for s in subjects))[2::VALIDATION_EVERY]


def augment(x_raw, rng):
    """A random crop of each sequence's valid frames (where the test feeder takes the centre
    95 %), then a random view rotation and scale: subjects and cameras not seen in training."""
    cropped = np.zeros_like(x_raw)
    for i, seq in enumerate(x_raw):
        valid = valid_frame_count(seq)
        keep = max(8, int(valid * rng.uniform(0.8, 1.0)))
        start = rng.integers(0, valid - keep + 1)
        cropped[i, :keep] = seq[start:start + keep]
    x = resample(cropped, FRAMES, crop=1.0)  # (N, 3, T, V, M)
    yaw = rng.uniform(-0.3, 0.3, len(x))
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((len(x), 3, 3), dtype=np.float32)
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    rot *= rng.uniform(0.9, 1.1, (len(x), 1, 1)).astype(np.float32)
    present = np.any(x != 0, axis=1, keepdims=True)
    return (np.einsum('nij,njtvm->nitvm', rot, x) * present).astype(np.float32)


def accuracy(model, x, y, batch=64):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + batch])).argmax(1) for i in range(0, len(x), batch)])
    return float((pred.numpy() == y).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', choices=list(MODELS), default='transformer')
    ap.add_argument('--data', default='media/samples/skeleton-actions.npz')
    ap.add_argument('--out', help='ONNX path (default media/samples/<name>.onnx)')
    ap.add_argument('--epochs', type=int)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (the dev box is shared)')
    args = ap.parse_args()
    epochs = args.epochs or DEFAULT_EPOCHS[args.model]
    out = args.out or os.path.join(os.path.dirname(args.data), OUT_NAME[args.model])

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    raw = np.load(args.data)
    data = load(args.data, FRAMES)
    val_subjects = validation_subjects(raw['s_train'])
    is_val = np.isin(raw['s_train'], val_subjects)
    x_train_raw = raw['x_train'][~is_val]
    y_train = torch.from_numpy(data['y_train'][~is_val])
    x_val, y_val = data['x_train'][is_val], data['y_train'][is_val]
    classes = raw['y_train'].shape[1]
    model = MODELS[args.model](classes)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = epochs * ((len(x_train_raw) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    print(f'{args.model}: {params} parameters, {len(x_train_raw)} train / {len(x_val)} validation (subjects {val_subjects}) / '
          f'{len(data["x_test"])} test, {epochs} epochs', flush=True)

    t0 = time.time()
    history, best = [], None
    for epoch in range(epochs):
        model.train()
        x = torch.from_numpy(augment(x_train_raw, rng))
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), args.batch):
            b = perm[i:i + args.batch]
            loss = F.cross_entropy(model(x[b]), y_train[b], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(b)
        val_acc = accuracy(model, x_val, y_val)
        history.append({'epoch': epoch + 1, 'loss': total / len(x), 'val_acc': val_acc, 'seconds': round(time.time() - t0, 1)})
        if best is None or val_acc >= best[1]:  # ties go to the later (further trained) epoch
            best = (epoch + 1, val_acc, copy.deepcopy(model.state_dict()))
        print(f'epoch {epoch + 1:3d}  loss {total / len(x):.4f}  validation top-1 {100 * val_acc:.2f} %  ({time.time() - t0:.0f} s)', flush=True)
    seconds = time.time() - t0

    model.load_state_dict(best[2])
    train_acc = accuracy(model, data['x_train'][~is_val], data['y_train'][~is_val])
    test_acc = accuracy(model, data['x_test'], data['y_test'])  # the only look at the test set
    export(model, out)
    info = {
        'model': args.model, 'onnx': os.path.basename(out), 'parameters': params, 'epochs': epochs,
        'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'threads': args.threads, 'frames': FRAMES,
        'split': {'train_samples': int((~is_val).sum()), 'validation_samples': int(is_val.sum()), 'test_samples': len(data['x_test']),
                  'validation_subjects': val_subjects, 'test': 'x_test (the data set\'s test subjects)'},
        'chosen_epoch': best[0], 'train_seconds': round(seconds, 1),
        'train_top1': train_acc, 'val_top1': best[1], 'test_top1': test_acc,
        'torch': torch.__version__, 'history': history,
    }
    with open(os.path.splitext(out)[0] + '.training.json', 'w') as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != 'history'}))


def export(model, out):
    model.eval()
    tmp = out + '.tmp'
    # No constant folding: it would expand the hop-distance embedding (hops + 1 rows, gathered by
    # a constant 25x25 index) into 625 stored rows per block.
    torch.onnx.export(
        model, torch.zeros(1, 3, FRAMES, 25, 2), tmp, input_names=['skeleton'], output_names=['logits'],
        dynamic_axes={'skeleton': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=13, do_constant_folding=False)
    import onnx
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, out)


if __name__ == '__main__':
    main()
