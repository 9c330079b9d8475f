"""Output-quality metrics shared by tools/compare and the tests that check conversions."""
import numpy as np


def snr_db(pairs):
    """Signal-to-noise ratio in dB over (want, got) array pairs taken together: the reference's
    energy over the energy of the difference (finite when they are equal)."""
    pairs = [(np.asarray(w, np.float64), np.asarray(g, np.float64).reshape(np.shape(w))) for w, g in pairs]
    signal = sum(float((w ** 2).sum()) for w, _ in pairs)
    noise = sum(float(((g - w) ** 2).sum()) for w, g in pairs)
    return 10 * np.log10(signal / max(noise, 1e-30))


def auc(y, p):
    """ROC AUC of scores p for binary labels y (rank statistic; ties broken by a stable order)."""
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
