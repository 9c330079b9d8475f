#!/usr/bin/env python3
"""BERT fixtures built with Hugging Face `transformers`.

tiny_bert: a BERT-style query/product encoder from a small config, trained on a synthetic matching
task, written with minnow_reference.export_for_minnow (stock torch.onnx dynamo export with its
attention mask; mean-pooled embedding output).

bert_user_seq128: a different config (3 layers, hidden 96, 3 heads, tanh GELU, sequence 128)
exported the way a user exports a `BertModel` themselves: the whole model, both of its outputs
(last_hidden_state, pooler_output), `dynamic_axes` for batch and sequence. Minnow converts it with
`--max-seq 128`.

    python3 tools/reference/make_bert_fixture.py [--out fixtures] [--only tiny_bert bert_user_seq128]

Seeds are fixed: the same torch and transformers versions write the same files.
"""
import argparse
import os

import numpy as np
import torch
from torch import nn

from minnow_reference import export_for_minnow, write_reference

SEED = 0
VOCAB, SEQ, TOPICS = 1000, 32, 16


class Encoder(nn.Module):
    """transformers BertModel -> mean over the unmasked tokens -> the text's embedding."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        w = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)


def texts(r, n, topic):
    """Token sequences of 6 to SEQ tokens ([CLS]=1 first, padded with 0 on the right): each topic
    owns a block of the vocabulary; 70% of a text's words come from its topic."""
    per = (VOCAB - 10) // TOPICS
    ids = np.zeros((n, SEQ), np.int64)
    mask = np.zeros((n, SEQ), np.int64)
    lengths = r.integers(6, SEQ + 1, n)
    for i in range(n):
        own = 10 + topic[i] * per + r.integers(0, per, lengths[i])
        noise = r.integers(10, VOCAB, lengths[i])
        words = np.where(r.random(lengths[i]) < 0.7, own, noise)
        words[0] = 1
        ids[i, :lengths[i]] = words
        mask[i, :lengths[i]] = 1
    return ids, mask


def tiny_bert(out_dir):
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED)
    r = np.random.default_rng(SEED)
    config = BertConfig(vocab_size=VOCAB, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=256, max_position_embeddings=64, hidden_act="gelu")
    model = Encoder(BertModel(config, add_pooling_layer=False))
    n = 12_000
    topic = r.integers(0, TOPICS, n)
    q_ids, q_mask = texts(r, n, topic)
    p_ids, p_mask = texts(r, n, topic)           # a product text on the query's topic
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    tr = slice(0, 10_000)
    q, qm, p, pm = (torch.tensor(a[tr]) for a in (q_ids, q_mask, p_ids, p_mask))
    for epoch in range(3):
        model.train()
        perm = torch.randperm(len(q), generator=g)
        for i in range(0, len(q), 128):
            idx = perm[i:i + 128]
            a = nn.functional.normalize(model(q[idx], qm[idx]), dim=-1)
            b = nn.functional.normalize(model(p[idx], pm[idx]), dim=-1)
            # In-batch negatives (the usual two-tower contrastive loss).
            loss = nn.functional.cross_entropy(a @ b.T / 0.05, torch.arange(len(idx)))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"  epoch {epoch}: loss {float(loss):.4f}")
    model.eval()
    te = slice(10_000, 11_000)
    with torch.no_grad():
        a = nn.functional.normalize(model(torch.tensor(q_ids[te]), torch.tensor(q_mask[te])), dim=-1)
        b = nn.functional.normalize(model(torch.tensor(p_ids[te]), torch.tensor(p_mask[te])), dim=-1)
    # Each query's nearest product among 1,000: does it share the query's topic?
    nearest = torch.argmax(a @ b.T, 1).numpy()
    top1 = float(np.mean(topic[te][nearest] == topic[te]))
    print(f"  tiny_bert: nearest product on the query's topic {top1:.4f} (chance {1 / TOPICS:.4f})")
    parity = {"outputs": {"text_embedding": {"cosine_min": {"min": 0.99}}}}
    export_for_minnow(model, os.path.join(out_dir, "tiny_bert"),
                      inputs={"input_ids": q_ids[te][:300], "attention_mask": q_mask[te][:300]},
                      calibration={"input_ids": q_ids[:200], "attention_mask": q_mask[:200]},
                      parity=parity, output_names=["text_embedding"])
    with open(os.path.join(out_dir, "tiny_bert", "README.md"), "w") as f:
        f.write("# tiny_bert\n\n"
                f"A BERT encoder from Hugging Face `transformers` (`BertModel`, {config.num_hidden_layers} layers, hidden "
                f"{config.hidden_size}, {config.num_attention_heads} heads, FFN {config.intermediate_size}, vocabulary {VOCAB}) "
                f"trained for three epochs as a two-tower query/product encoder (in-batch negatives) on synthetic texts "
                f"of up to {SEQ} tokens, padded on the right with an attention mask. Output: the mean of the unmasked "
                f"tokens' last hidden states. For {top1:.1%} of 1,000 test queries the nearest of 1,000 test products is on the "
                f"query's topic (chance: {1 / TOPICS:.1%}).\n\n"
                "Regenerate: `python3 tools/reference/make_bert_fixture.py --only tiny_bert` (needs `transformers`).\n")


def bert_user_seq128(out_dir):
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED + 1)
    r = np.random.default_rng(SEED + 1)
    seq, vocab = 128, 3000
    config = BertConfig(vocab_size=vocab, hidden_size=96, num_hidden_layers=3, num_attention_heads=3,
                        intermediate_size=384, max_position_embeddings=seq, hidden_act="gelu_new")
    model = BertModel(config).eval()
    n = 200
    lengths = r.integers(4, seq + 1, n)
    ids = r.integers(100, vocab, (n, seq)).astype(np.int64)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids[mask == 0] = 0                                      # [PAD]
    ids[:, 0] = 101                                         # [CLS]
    d = os.path.join(out_dir, "bert_user_seq128")
    os.makedirs(d, exist_ok=True)
    example = (torch.tensor(ids[:2]), torch.tensor(mask[:2]))
    # What a user writes: the classic export call with batch and sequence axes left dynamic.
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"}, "pooler_output": {0: "batch"}}
    torch.onnx.export(model, example, os.path.join(d, "model.onnx"), input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state", "pooler_output"], dynamic_axes=axes, dynamo=True,
                      external_data=False)
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    outputs = {"last_hidden_state": out.last_hidden_state.numpy(), "pooler_output": out.pooler_output.numpy()}
    # Token states: cosine per sample over every token (padding included, as PyTorch computes it).
    parity = {"outputs": {"last_hidden_state": {"cosine_min": {"min": 0.99}}, "pooler_output": {"cosine_min": {"min": 0.99}}}}
    write_reference(d, {"input_ids": ids[100:148], "attention_mask": mask[100:148]}, {k: v[100:148] for k, v in outputs.items()},
                    calibration={"input_ids": ids[:100], "attention_mask": mask[:100]}, parity=parity)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("# bert_user_seq128\n\n"
                "A `transformers` `BertModel` (3 layers, hidden 96, 3 heads, FFN 384, `gelu_new`, vocabulary 3,000, "
                "random weights) exported as a user would: `torch.onnx.export(model, (input_ids, attention_mask), "
                "dynamo=True, dynamic_axes=...)` with batch and sequence dynamic, both outputs. Reference: PyTorch's "
                "outputs on 48 inputs of 128 tokens (lengths 4 to 128, padded on the right).\n\n"
                "Convert: `minnow convert model.onnx -o m.minnow --max-seq 128 --calibration calibration.npz`.\n\n"
                "Regenerate: `python3 tools/reference/make_bert_fixture.py --only bert_user_seq128`.\n")


FIXTURES = {"tiny_bert": tiny_bert, "bert_user_seq128": bert_user_seq128}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
    ap.add_argument("--only", nargs="*", choices=sorted(FIXTURES))
    args = ap.parse_args()
    torch.set_num_threads(2)
    for name in args.only or sorted(FIXTURES):
        FIXTURES[name](args.out)
