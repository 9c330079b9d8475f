#!/usr/bin/env python3
"""Trains small LSTM and GRU classifiers in every layout users export them in, and writes each
with minnow_reference.export_for_minnow (model.onnx, calibration.npz, reference.npz, parity.json):

    cell:     lstm, gru
    layout:   batch-first (batch_first=True) or time-major (batch_first=False)
    dirs:     uni or bi(directional)
    readout:  hn   -- the final hidden state h_n (h[-1], or cat(h[0], h[1]) when bidirectional)
              last -- the last step of the output sequence (y[:, -1] or y[-1])
              hc   -- LSTM only: cat(h_n[-1], c_n[-1]), the final cell state read too

ONNX puts the batch at axis 1 of Y_h / Y_c (and of Y when time-major); these exports are what
the converter must read without asking for the batch first. Every variant comes from the torch
dynamo exporter (opset 20); `lstm_bf_bi_hn` is also written with the TorchScript exporter
(`lstm_bf_bi_hn_legacy`).

    python3 tools/reference/make_recurrent_variants.py [--out fixtures/recurrent]

The task: sequences of 12 item ids (200 items in 6 categories); the class is the category that
occurs most often, so the model must read the whole sequence. Seeds are fixed.
"""
import argparse
import os

import numpy as np
import torch
from torch import nn

from minnow_reference import export_for_minnow

SEED = 0
ITEMS, CATEGORIES, SEQ = 200, 6, 12


class Classifier(nn.Module):
    def __init__(self, cell, batch_first, bidirectional, readout, dim=16, hidden=24):
        super().__init__()
        self.batch_first, self.bidirectional, self.readout, self.cell = batch_first, bidirectional, readout, cell
        self.emb = nn.Embedding(ITEMS, dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(dim, hidden, batch_first=batch_first, bidirectional=bidirectional)
        dirs = 2 if bidirectional else 1
        width = hidden * (dirs if readout != "hc" else 2 * dirs)
        self.fc = nn.Linear(width, CATEGORIES)

    def forward(self, items):
        x = self.emb(items if self.batch_first else items.t())
        y, state = self.rnn(x)
        h, c = state if self.cell == "lstm" else (state, None)
        if self.readout == "last":
            z = y[:, -1] if self.batch_first else y[-1]
        elif self.bidirectional:
            z = torch.cat([h[0], h[1]] + ([c[0], c[1]] if self.readout == "hc" else []), dim=1)
        else:
            z = torch.cat([h[-1]] + ([c[-1]] if self.readout == "hc" else []), dim=1)
        return torch.softmax(self.fc(z), dim=-1)


def data(n, r):
    category = r.integers(0, CATEGORIES, ITEMS)
    x = r.integers(0, ITEMS, (n, SEQ))
    counts = np.stack([(category[x] == c).sum(1) for c in range(CATEGORIES)], 1)
    return x, counts.argmax(1)


def variant(out_dir, name, cell, batch_first, bidirectional, readout, dynamo=True):
    torch.manual_seed(SEED)
    r = np.random.default_rng(SEED)
    x, y = data(9000, r)
    model = Classifier(cell, batch_first, bidirectional, readout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(SEED)
    xt, yt = torch.tensor(x[:8000]), torch.tensor(y[:8000])
    for _ in range(6):
        perm = torch.randperm(8000, generator=g)
        for i in range(0, 8000, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            nn.functional.nll_loss(torch.log(model(xt[idx]) + 1e-9), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.tensor(x[8000:])).argmax(1).numpy() == y[8000:]).mean()
    print(f"  {name}: held-out accuracy {acc:.3f}")
    parity = {"task": "multiclass", "labels": {"accuracy": {"max_drop": 0.01}},
              "outputs": {"category": {"top1_agreement": {"min": 0.99}}}}
    export_for_minnow(model, os.path.join(out_dir, name), inputs={"items": x[8000:]}, calibration={"items": x[:500]},
                      labels={"category": y[8000:]}, parity=parity, output_names=["category"], dynamo=dynamo)


def variants():
    out = []
    for cell in ("lstm", "gru"):
        for bf in (True, False):
            for bi in (False, True):
                for readout in ("hn", "last") + (("hc",) if cell == "lstm" else ()):
                    name = f"{cell}_{'bf' if bf else 'tm'}_{'bi' if bi else 'uni'}_{readout}"
                    out.append((name, dict(cell=cell, batch_first=bf, bidirectional=bi, readout=readout)))
    out.append(("lstm_bf_bi_hn_legacy", dict(cell="lstm", batch_first=True, bidirectional=True, readout="hn", dynamo=False)))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "recurrent"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, kw in variants():
        if args.only and name not in args.only:
            continue
        variant(args.out, name, **kw)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("# recurrent\n\n" + __doc__.split("\n\n", 1)[1].split("\n    python3")[0].strip() + "\n\n"
                "Regenerate: `python3 tools/reference/make_recurrent_variants.py`\n")
