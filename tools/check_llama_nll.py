#!/usr/bin/env python3
"""Checks llama.cpp against transformers, sentence by sentence, on one model: llama.cpp's NLLs of
each line (tools/llama_sentence_nll.c on a GGUF of the model, for example polyq's
`polyq quantize DIR --quant fp32 --out m.gguf`) beside transformers' on the Hugging Face folder,
each line scored after the model's BOS with the ids of the folder's tokenizer.json (the
`tokenizers` pipeline of the file, which polyq reproduces; transformers 5's AutoTokenizer may
build a family's pipeline of its own instead). Prints the largest relative difference and fails
when a line's token count differs. For checks by hand; part of no test.

  tools/check_llama_nll.py LLAMA_SENTENCE_NLL MODEL_DIR MODEL.gguf LINES.txt
"""
import os, subprocess, sys

import tokenizers, torch, transformers


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    exe, folder, gguf, lines = sys.argv[1:]
    out = subprocess.run([exe, gguf, lines], check=True, capture_output=True).stdout
    ref = [l.split() for l in out.decode("utf-8", "replace").split("\n") if l.strip()]
    tok = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    bos = model.config.bos_token_id
    with open(lines, encoding="utf-8") as f:
        text = f.read().split("\n")  # as polyq reads lines (not str.splitlines)
    worst = 0.0
    for i, (line, (n, nll_ref)) in enumerate(zip(text, ref)):
        ids = [bos] + tok.encode(line, add_special_tokens=False).ids
        if int(n) != len(ids) - 1:
            sys.exit("line %d: llama.cpp scores %s tokens, the tokenizer gives %d" % (i + 1, n, len(ids) - 1))
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        nll = -sum(lp[t, ids[t + 1]].item() for t in range(len(ids) - 1))
        worst = max(worst, abs(nll - float(nll_ref)) / nll)
    print("%s: %d lines, the same token counts, NLLs within %.2g (relative)" % (folder, len(ref), worst))


if __name__ == "__main__":
    main()
