"""Train a sample model on the procedural dataset with plain PyTorch on the CPU, then export ONNX.

Usage:
  /usr/bin/python3 scripts/sample/train.py --model transformer   # -> media/samples/skeleton-transformer.onnx
  /usr/bin/python3 scripts/sample/train.py --model mlp           # -> media/samples/skeleton-mlp.onnx

Writes the ONNX model (opset 13, input `skeleton` (batch, 3, 64, 25, 2), output `logits`
(batch, classes), dynamic batch) and `<model>.training.json` beside it (settings, time, the
test accuracy of the last epoch: no model selection on the test set).
"""
import argparse
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

FRAMES = 64
DEFAULT_EPOCHS = {'transformer': 16, 'mlp': 60}
OUT_NAME = {'transformer': 'skeleton-transformer.onnx', 'mlp': 'skeleton-mlp.onnx'}


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
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1, help='CPU threads (the dev box is shared)')
    args = ap.parse_args()
    epochs = args.epochs or DEFAULT_EPOCHS[args.model]
    out = args.out or os.path.join(os.path.dirname(args.data), OUT_NAME[args.model])

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    raw = np.load(args.data)
    x_train_raw = raw['x_train']
    data = load(args.data, FRAMES)
    classes = raw['y_train'].shape[1]
    model = MODELS[args.model](classes)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = epochs * ((len(x_train_raw) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    y_train = torch.from_numpy(data['y_train'])
    print(f'{args.model}: {params} parameters, {len(x_train_raw)} train / {len(data["x_test"])} test, {epochs} epochs', flush=True)

    t0 = time.time()
    history = []
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
        test_acc = accuracy(model, data['x_test'], data['y_test'])
        history.append({'epoch': epoch + 1, 'loss': total / len(x), 'test_acc': test_acc})
        print(f'epoch {epoch + 1:3d}  loss {total / len(x):.4f}  test top-1 {100 * test_acc:.2f} %  ({time.time() - t0:.0f} s)', flush=True)
    seconds = time.time() - t0

    train_acc = accuracy(model, data['x_train'], data['y_train'])
    test_acc = accuracy(model, data['x_test'], data['y_test'])
    export(model, out, classes)
    info = {
        'model': args.model, 'onnx': os.path.basename(out), 'parameters': params, 'epochs': epochs,
        'batch': args.batch, 'lr': args.lr, 'seed': args.seed, 'threads': args.threads, 'frames': FRAMES,
        'train_seconds': round(seconds, 1), 'train_top1': train_acc, 'test_top1': test_acc,
        'torch': torch.__version__, 'history': history,
    }
    with open(os.path.splitext(out)[0] + '.training.json', 'w') as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != 'history'}))


def export(model, out, classes):
    model.eval()
    tmp = out + '.tmp'
    torch.onnx.export(
        model, torch.zeros(1, 3, FRAMES, 25, 2), tmp, input_names=['skeleton'], output_names=['logits'],
        dynamic_axes={'skeleton': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=13, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(tmp))
    os.replace(tmp, out)


if __name__ == '__main__':
    main()
