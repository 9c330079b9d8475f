#!/usr/bin/env python3
"""Trains Minnow's reference fixtures with PyTorch and writes, per fixture:
model.onnx, calibration.npz (training rows), reference.npz (held-out rows, the trainer's own fp32
outputs and labels), parity.json (thresholds) and README.md (one line on what the model is).

    python3 tools/reference/make_fixtures.py [--out fixtures] [--only NAME ...]

Data ships with scikit-learn (no network). Seeds are fixed: same torch version, same files.
The export and reference files are written by minnow_reference.export_for_minnow, the module a
user calls at the end of their own training script.
"""
import argparse
import json
import os

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from minnow_reference import export_for_minnow

SEED = 0


def train(model, x, y, loss_fn, epochs, lr=1e-2, batch=64):
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def write(out_dir, name, model, x_train, x_test, y_test, input_name, output_name, parity, description):
    d = os.path.join(out_dir, name)
    export_for_minnow(model, d, inputs={input_name: x_test}, calibration={input_name: x_train},
                      labels={output_name: y_test}, parity=parity, output_names=[output_name])
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(f"# {name}\n\n{description}\n\nRegenerate: `python3 tools/reference/make_fixtures.py --only {name}`\n")
    print(f"{name}: wrote {d}")


class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=-1)


def digits_mlp(out_dir):
    torch.manual_seed(SEED)
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    model = DigitsMLP()
    nll = nn.NLLLoss()
    train(model, torch.tensor(x_tr), torch.tensor(y_tr), lambda p, t: nll(torch.log(p + 1e-9), t), epochs=60, lr=3e-3)
    parity = {"task": "multiclass", "outputs": {"probs": {"top1_agreement": {"min": 0.99}}}, "labels": {"accuracy": {"max_drop": 0.01}}}
    write(out_dir, "digits_mlp", model, x_tr, x_te, y_te, "x", "probs", parity,
          "Handwritten digits (scikit-learn `load_digits`, 8x8 images scaled to [0, 1]): 64 -> 128 ReLU -> 10 softmax.")


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 4 * 4, 10))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=-1)


def cnn_digits(out_dir):
    torch.manual_seed(SEED)
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    model = DigitsCNN()
    nll = nn.NLLLoss()
    train(model, torch.tensor(x_tr), torch.tensor(y_tr), lambda p, t: nll(torch.log(p + 1e-9), t), epochs=30, lr=3e-3)
    parity = {"task": "multiclass", "outputs": {"probs": {"top1_agreement": {"min": 0.99}}}, "labels": {"accuracy": {"max_drop": 0.01}}}
    write(out_dir, "cnn_digits", model, x_tr, x_te, y_te, "x", "probs", parity,
          "Handwritten digits as 1x8x8 images: conv 3x3 (8) + BatchNorm + ReLU, conv 3x3 (16) + ReLU, max-pool 2, "
          "dense 10, softmax.")


class CtrMLP(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        # Standardization lives in the graph (Sub, Div), as a feature-scaling layer would.
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return torch.sigmoid(self.net((x - self.mean) / self.std))


def ctr_mlp(out_dir):
    torch.manual_seed(SEED)
    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    y = data.target.astype(np.float32).reshape(-1, 1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
    model = CtrMLP(x_tr.mean(0).astype(np.float32), (x_tr.std(0) + 1e-6).astype(np.float32))
    bce = nn.BCELoss()
    train(model, torch.tensor(x_tr), torch.tensor(y_tr), bce, epochs=40, lr=1e-3)
    parity = {"task": "binary", "outputs": {"ctr": {"max_abs_error": {"max": 0.05}}}, "labels": {"roc_auc": {"max_drop": 0.005}}}
    write(out_dir, "ctr_mlp", model, x_tr, x_te, y_te, "x", "ctr", parity,
          "Binary classifier standing in for a CTR model (scikit-learn breast cancer, standardization in the graph): "
          "30 -> 64 ReLU -> 32 ReLU -> 1 sigmoid.")


class RegressionMLP(nn.Module):
    def __init__(self, y_mean, y_std):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    def forward(self, x):
        return self.net(x) * self.y_std + self.y_mean  # de-standardize the target in the graph


def regression_mlp(out_dir):
    torch.manual_seed(SEED)
    data = load_diabetes()
    x = (data.data / data.data.std(0)).astype(np.float32)
    y = data.target.astype(np.float32).reshape(-1, 1)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED)
    model = RegressionMLP(y_tr.mean(), y_tr.std())
    mse = nn.MSELoss()
    train(model, torch.tensor(x_tr), torch.tensor(y_tr), lambda p, t: mse(p, t) / float(y_tr.var()), epochs=12, lr=1e-3, batch=32)  # early stop: the data set is small
    parity = {"task": "regression", "labels": {"rmse": {"max_rise_pct": 3.0}}}
    write(out_dir, "regression_mlp", model, x_tr, x_te, y_te, "x", "y", parity,
          "Regression (scikit-learn diabetes, target de-standardized in the graph): 10 -> 64 ReLU -> 64 ReLU -> 1.")


FIXTURES = {"digits_mlp": digits_mlp, "cnn_digits": cnn_digits, "ctr_mlp": ctr_mlp, "regression_mlp": regression_mlp}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
    ap.add_argument("--only", nargs="*", choices=sorted(FIXTURES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.only or sorted(FIXTURES):
        FIXTURES[name](args.out)
    if not args.only:
        import make_error_fixtures
        make_error_fixtures.main()
