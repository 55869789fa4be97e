#!/usr/bin/env python3
"""Reference GPTQ of whole fixture models, each linear quantized by AutoGPTQ's own quantizer
(auto_gptq.quantization.gptq.GPTQ, loaded as tools/gen_gptq_reference.py loads it), block after
block as AutoGPTQ's quantize() runs a model with true_sequential=False: the calibration
sequences go through the model with every block before this one already quantized, each linear
of the block collects its inputs (add_batch), then every linear of the block is quantized
(fasterquant: blocks of 128 columns, dampening 0.01, groups, no act-order) and the block's
quantized weights are used from then on. The model runs in float32 (the fixtures' BF16 weights
exactly), one sequence at a time.

  BUILD_CUDA_EXT=0 pip install --no-deps --no-build-isolation auto-gptq==0.7.1
  tools/gen_gptq_model_reference.py ../shared/data/flores200

Calibration: BOS + the Hugging Face tokenizer's ids of the first 8 eng_Latn and 4 hin_Deva
sentences of FLORES-200 dev. Writes tests/golden/gptq_model_ref.safetensors: per fixture
`<fixture>.ids` (I32, the sequences one after another), `<fixture>.starts` (I32, n + 1 offsets)
and `<fixture>.L<block>.<linear>` (F32 [out, in]: the fake-quantized weights the block computes
with, GPT-2's Conv1D transposed to [out, in])."""
import os, sys
import numpy as np
import torch, transformers
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_gptq_reference import load_autogptq  # noqa: E402

FIXTURES = {"gpt2-tiny-vocab-bf16": ("int4", 16), "llama-tiny-vocab-bf16": ("int4", 16)}


def lines(flores, lang, n):
    with open(os.path.join(flores, "dev", lang + ".dev"), encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f][:n]


def main():
    flores = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    GPTQ = load_autogptq()
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.set_num_threads(1)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = {}
    for fx, (kind, group) in FIXTURES.items():
        path = os.path.join(root, "tests", "fixtures", fx)
        tok = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        bos = model.config.bos_token_id
        seqs = [[bos] + tok(s, add_special_tokens=False)["input_ids"]
                for s in lines(flores, "eng_Latn", 8) + lines(flores, "hin_Deva", 4)]
        out[fx + ".ids"] = np.array([i for s in seqs for i in s], dtype=np.int32)
        out[fx + ".starts"] = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int32)
        blocks = model.transformer.h if hasattr(model, "transformer") else model.model.layers
        for l, block in enumerate(blocks):
            mods = {n: m for n, m in block.named_modules()
                    if isinstance(m, (torch.nn.Linear, transformers.pytorch_utils.Conv1D))}
            g = {}
            for n, m in mods.items():
                g[n] = GPTQ(m)
                g[n].quantizer.configure(4, perchannel=True, sym=False, mse=False)
            hooks = [m.register_forward_hook(lambda mod, inp, o, n=n: g[n].add_batch(inp[0].data, o.data))
                     for n, m in mods.items()]
            with torch.no_grad():
                for s in seqs:
                    model(torch.tensor([s]))
            for h in hooks:
                h.remove()
            for n, m in mods.items():
                g[n].fasterquant(blocksize=128, percdamp=0.01, group_size=group, actorder=False)
                w = m.weight.data
                if isinstance(m, transformers.pytorch_utils.Conv1D):
                    w = w.t()
                out["%s.L%d.%s" % (fx, l, n)] = w.contiguous().numpy().astype(np.float32)
                g[n].free()
    from importlib.metadata import version
    path = os.path.join(root, "tests", "golden", "gptq_model_ref.safetensors")
    save_file(out, path, metadata={"auto_gptq": version("auto-gptq"), "torch": torch.__version__,
                                   "transformers": transformers.__version__})
    os.chmod(path, 0o644)
    print("wrote", path, sorted(k for k in out if ".L0." in k))


if __name__ == "__main__":
    main()
