#!/usr/bin/env python3
"""Trains the recommendation and sequence fixtures with PyTorch on synthetic logs that carry a
learnable signal, and writes each with minnow_reference.export_for_minnow (model.onnx from the
stock torch exporter, calibration.npz, reference.npz, parity.json, README.md).

    python3 tools/reference/make_rec_fixtures.py [--out fixtures] [--only dlrm_ctr bst_seqrec]

Seeds are fixed: the same torch version writes the same files.
"""
import argparse
import os

import numpy as np
import torch
from torch import nn

from minnow_reference import export_for_minnow

SEED = 0


def auc(y, p):
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def train(model, inputs, y, epochs, lr, batch=256):
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCELoss()
    n = len(y)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(*(t[idx] for t in inputs)), y[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"  epoch {epoch}: loss {total / n:.4f}")
    model.eval()
    return model


def write_readme(out_dir, name, text):
    with open(os.path.join(out_dir, name, "README.md"), "w") as f:
        f.write(f"# {name}\n\n{text}\n\nRegenerate: `python3 tools/reference/make_rec_fixtures.py --only {name}`\n")


# ---------------------------------------------------------------- dlrm_ctr

DLRM_TABLES = [100_000, 30_000, 10_000] + [int(round(5000 * (1000 / 5000) ** (i / 22))) for i in range(23)]


class DLRM(nn.Module):
    """Bottom MLP on dense features, one embedding per categorical feature, pairwise dot-product
    interactions (the lower triangle of T T^T), top MLP, sigmoid: the DLRM reference design."""

    def __init__(self, tables, dim=16):
        super().__init__()
        self.bottom = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, dim), nn.ReLU())
        self.embeddings = nn.ModuleList(nn.Embedding(rows, dim) for rows in tables)
        for e in self.embeddings:
            nn.init.normal_(e.weight, std=0.05)
        f = len(tables) + 1
        li, lj = torch.tril_indices(f, f, offset=-1)
        self.register_buffer("pairs", li * f + lj, persistent=False)
        self.top = nn.Sequential(nn.Linear(dim + f * (f - 1) // 2, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())

    def forward(self, dense, sparse):
        x = self.bottom(dense)
        t = torch.stack([x] + [e(sparse[:, i]) for i, e in enumerate(self.embeddings)], dim=1)
        z = torch.bmm(t, t.transpose(1, 2)).flatten(1)
        return self.top(torch.cat([x, z[:, self.pairs]], dim=1))


def dlrm_ctr(out_dir):
    torch.manual_seed(SEED)
    r = np.random.default_rng(SEED)
    n = 60_000
    dense = r.standard_normal((n, 13)).astype(np.float32)
    # Zipf-like ids: a few rows are hot, most are rare (as in click logs).
    sparse = np.stack([(r.zipf(1.25, n) - 1 + r.integers(0, 7) * 131) % rows for rows in DLRM_TABLES], 1)
    # The click signal: dense features, per-id effects on three tables, and one interaction.
    effect = [r.standard_normal(rows) for rows in DLRM_TABLES[:3]]
    logit = (dense[:, :4] @ np.array([0.8, -0.6, 0.5, 0.3]) + effect[0][sparse[:, 0]] + 0.7 * effect[1][sparse[:, 1]]
             + 0.5 * effect[2][sparse[:, 2]] * np.sign(dense[:, 4]) - 0.5)
    y = (r.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32).reshape(-1, 1)
    tr, te = slice(0, 50_000), slice(50_000, n)
    model = DLRM(DLRM_TABLES)
    train(model, (torch.tensor(dense[tr]), torch.tensor(sparse[tr])), torch.tensor(y[tr]), epochs=2, lr=2e-3)
    with torch.no_grad():
        p = model(torch.tensor(dense[te]), torch.tensor(sparse[te])).numpy().ravel()
    print(f"  dlrm_ctr: test AUC {auc(y[te].ravel(), p):.4f}")
    parity = {"task": "binary", "labels": {"roc_auc": {"max_drop": 0.003}}}
    export_for_minnow(model, os.path.join(out_dir, "dlrm_ctr"), inputs={"dense": dense[te][:4000], "sparse": sparse[te][:4000]},
                      calibration={"dense": dense[:2000], "sparse": sparse[:2000]}, labels={"ctr": y[te][:4000]},
                      parity=parity, output_names=["ctr"])
    write_readme(out_dir, "dlrm_ctr",
                 f"DLRM-style CTR model on a synthetic click log: 13 dense features -> bottom MLP (64, 16); 26 categorical "
                 f"features, tables of {min(DLRM_TABLES):,} to {max(DLRM_TABLES):,} rows ({sum(DLRM_TABLES):,} in all), dim 16; "
                 "pairwise dot interactions; top MLP (64, 1); sigmoid.")


# ---------------------------------------------------------------- bst_seqrec

class Block(nn.Module):
    """A post-norm transformer encoder block with the attention written out (as Hugging Face
    BERT does), so the batch stays the first dimension through the export."""

    def __init__(self, dim, heads, ffn):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x, mask_add):
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / self.head_dim ** 0.5 + mask_add
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        x = self.norm1(x + self.out(ctx))
        return self.norm2(x + self.ffn(x))


class BST(nn.Module):
    """Behaviour Sequence Transformer: the user's last items plus the target item, with position
    embeddings, through two encoder blocks; masked mean pool; MLP; sigmoid."""

    def __init__(self, items, seq, dim=32, heads=2):
        super().__init__()
        self.items = nn.Embedding(items, dim)
        self.positions = nn.Embedding(seq + 1, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim) for _ in range(2))
        self.head = nn.Sequential(nn.Linear(2 * dim, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())

    def forward(self, history, target):
        ids = torch.cat([history, target.unsqueeze(1)], dim=1)           # [B, S+1]; id 0 = padding
        keep = ids != 0
        x = self.items(ids) + self.positions.weight.unsqueeze(0)
        mask_add = torch.where(keep, 0.0, -3.4028234663852886e38)[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask_add)
        w = keep.unsqueeze(-1).float()
        pooled = (x * w).sum(1) / w.sum(1)
        return self.head(torch.cat([pooled, x[:, -1]], dim=1))


def bst_seqrec(out_dir):
    torch.manual_seed(SEED)
    r = np.random.default_rng(SEED)
    items, seq, genres, n = 200, 50, 8, 30_000
    genre = (np.arange(items) * genres) // items                          # contiguous blocks of ids per genre
    genre[0] = -1
    users = r.integers(0, genres, (n, 2))                                  # two favourite genres per user
    lengths = r.integers(5, seq + 1, n)
    history = np.zeros((n, seq), np.int64)
    by_genre = [np.flatnonzero(genre == g) for g in range(genres)]
    for i in range(n):
        picks = [r.choice(by_genre[users[i, r.integers(0, 2)]]) if r.random() < 0.8 else r.integers(1, items)
                 for _ in range(lengths[i])]
        history[i, seq - lengths[i]:] = picks                               # left-padded, most recent last
    target = r.integers(1, items, n)
    liked = (genre[target] == users[:, 0]) | (genre[target] == users[:, 1])
    half = r.random(n) < 0.5                                               # half the targets from a favourite genre
    target[half] = [r.choice(by_genre[users[i, 0]]) for i in np.flatnonzero(half)]
    liked = (genre[target] == users[:, 0]) | (genre[target] == users[:, 1])
    y = (r.random(n) < np.where(liked, 0.8, 0.15)).astype(np.float32).reshape(-1, 1)
    tr, te = slice(0, 25_000), slice(25_000, n)
    model = BST(items, seq)
    train(model, (torch.tensor(history[tr]), torch.tensor(target[tr])), torch.tensor(y[tr]), epochs=12, lr=3e-3)
    with torch.no_grad():
        p = model(torch.tensor(history[te]), torch.tensor(target[te])).numpy().ravel()
    print(f"  bst_seqrec: test AUC {auc(y[te].ravel(), p):.4f}")
    parity = {"task": "binary", "labels": {"roc_auc": {"max_drop": 0.005}}}
    export_for_minnow(model, os.path.join(out_dir, "bst_seqrec"), inputs={"history": history[te][:3000], "target": target[te][:3000]},
                      calibration={"history": history[:1000], "target": target[:1000]}, labels={"click": y[te][:3000]},
                      parity=parity, output_names=["click"])
    write_readme(out_dir, "bst_seqrec",
                 f"Behaviour-sequence transformer on a synthetic log: {items:,} items (dim 32) plus positions, history of up to "
                 f"{seq} items (left-padded with id 0) and the target item; 2 encoder blocks (2 heads, FFN 128, GELU, LayerNorm, "
                 "padding mask); masked mean pool; MLP; sigmoid.")


# ---------------------------------------------------------------- bilstm_nextitem

class NextItem(nn.Module):
    """Embedding -> bidirectional LSTM -> last step -> dense softmax over the catalogue."""

    def __init__(self, items, dim=32, hidden=48):
        super().__init__()
        self.items = nn.Embedding(items, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, items)

    def forward(self, history):
        y, _ = self.lstm(self.items(history))
        return torch.softmax(self.out(y[:, -1]), dim=-1)


def bilstm_nextitem(out_dir):
    torch.manual_seed(SEED)
    r = np.random.default_rng(SEED)
    items, seq, n = 500, 20, 24_000
    # Sessions walk a hidden item graph: each item has a few likely successors.
    successors = r.integers(1, items, (items, 4))
    walks = np.zeros((n, seq + 1), np.int64)
    walks[:, 0] = r.integers(1, items, n)
    for t in range(1, seq + 1):
        follow = r.random(n) < 0.85
        walks[:, t] = np.where(follow, successors[walks[:, t - 1], r.integers(0, 4, n)], r.integers(1, items, n))
    history, target = walks[:, :seq], walks[:, seq]
    tr, te = slice(0, 20_000), slice(20_000, n)
    model = NextItem(items)
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.tensor(history[tr]), torch.tensor(target[tr])
    for epoch in range(6):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            loss = nn.functional.nll_loss(torch.log(model(x[idx]) + 1e-9), y[idx])
            loss.backward()
            opt.step()
        print(f"  epoch {epoch}: loss {float(loss):.4f}")
    model.eval()
    with torch.no_grad():
        p = model(torch.tensor(history[te])).numpy()
    top = np.argsort(-p, 1)[:, :10]
    print(f"  bilstm_nextitem: recall@10 {np.mean([target[te][i] in top[i] for i in range(len(top))]):.4f}")
    parity = {"task": "ranking", "k": 10, "labels": {"recall_at_k": {"max_drop": 0.01}}}
    export_for_minnow(model, os.path.join(out_dir, "bilstm_nextitem"), inputs={"history": history[te][:2000]},
                      calibration={"history": history[:1000]}, labels={"next": target[te][:2000]}, parity=parity,
                      output_names=["next"])
    write_readme(out_dir, "bilstm_nextitem",
                 f"Next-item model on synthetic sessions (random walks on an item graph, {items} items): embedding (32) -> "
                 f"bidirectional LSTM (48 per direction) over the last {seq} items -> last step -> dense softmax over items.")


FIXTURES = {"dlrm_ctr": dlrm_ctr, "bst_seqrec": bst_seqrec, "bilstm_nextitem": bilstm_nextitem}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
    ap.add_argument("--only", nargs="*", choices=sorted(FIXTURES))
    args = ap.parse_args()
    torch.set_num_threads(2)
    for name in args.only or sorted(FIXTURES):
        FIXTURES[name](args.out)
