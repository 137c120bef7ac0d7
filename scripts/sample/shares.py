"""Parameter shares of the sample models by layer kind, beside Hyperformer's (issue 14's list,
from its public code: NTU60, 2,729,194 parameters).

Usage: /usr/bin/python3 scripts/sample/shares.py [--markdown]
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import SkeletonCatformer, SkeletonTransformer  # noqa: E402

# (kind, Hyperformer's share in %, how a parameter name of ours is recognised)
KINDS = [
    ('attention kv (1x1)', 30.8, lambda n, p: '.attn.kv.' in n),
    ('temporal-block 1x1 branches', 17.1, lambda n, p: '.temporal.branches.' in n and p.dim() == 4 and p.shape[2] == 1),
    ('attention q (1x1)', 15.4, lambda n, p: '.attn.q.' in n),
    ('hyperedge projection (1x1)', 15.4, lambda n, p: '.edge_proj.' in n),
    ('temporal convs, kernel 5', 10.7, lambda n, p: '.temporal.branches.' in n and p.dim() == 4 and p.shape[2] == 5),
    ('block residual / skip 1x1', 3.5, lambda n, p: '.residual.0.' in n or '.skip.' in n),
    ('grouped attention projection', 2.9, lambda n, p: '.attn.proj.' in n),
    ('per-head 25x25 joint matrices', 2.1, lambda n, p: n.endswith('joint_matrix')),
    ('hop-distance embedding', 1.0, lambda n, p: n.endswith('hop_embed')),
    ('classifier', 0.5, lambda n, p: n.startswith('classifier.')),
]


def transformer_shares(model):
    counts = collections.Counter()
    for name, p in model.named_parameters():
        kind = next((k for k, _, match in KINDS if match(name, p)), 'other (norms, biases of BN, alpha, hyperedge bias)')
        counts[kind] += p.numel()
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--markdown', action='store_true')
    args = ap.parse_args()
    model = SkeletonTransformer(15)
    total = sum(p.numel() for p in model.parameters())
    counts = transformer_shares(model)
    rows = [(k, counts[k], 100 * counts[k] / total, ref) for k, ref, _ in KINDS]
    other = [k for k in counts if k not in {k for k, _, _ in KINDS}]
    rows += [(k, counts[k], 100 * counts[k] / total, None) for k in other]
    if args.markdown:
        print(f'| layer kind | parameters | share | Hyperformer | difference |\n| --- | ---: | ---: | ---: | ---: |')
        for k, n, share, ref in rows:
            diff = f'{share - ref:+.1f}' if ref is not None else ''
            print(f'| {k} | {n:,} | {share:.1f} % | {"" if ref is None else f"{ref:.1f} %"} | {diff} |')
        print(f'| total | {total:,} | 100 % | 2,729,194 parameters | |')
    else:
        print(f'skeleton-transformer: {total} parameters')
        for k, n, share, ref in rows:
            print(f'  {k:52s} {n:8d} {share:5.1f} %' + ('' if ref is None else f'   Hyperformer {ref:5.1f} %  ({share - ref:+.1f})'))
    worst = max(abs(share - ref) for _, _, share, ref in rows if ref is not None)
    print(f'largest difference from Hyperformer: {worst:.1f} points')

    cat = SkeletonCatformer(15)
    total = sum(p.numel() for p in cat.parameters())
    dense = sum(p.numel() for n, p in cat.named_parameters() if '.dense.' in n)
    print(f'skeleton-catformer: {total} parameters, {dense} ({100 * dense / total:.1f} %) in the per-frame dense layers')


if __name__ == '__main__':
    main()
