#!/usr/bin/env python3
"""Reference AWQ of a whole fixture model by AutoAWQ's own search and scaling
(awq.quantize.quantizer.AwqQuantizer._search_best_scale, awq.quantize.scale.apply_scale,
pseudo_quantize_tensor), run block after block the way AwqQuantizer.quantize() runs a model:
each block's linears and modules see the inputs the full-precision blocks before it give, the
groups are AutoAWQ's for Llama (q k v measured on the attention's output, o_proj only where
v_proj has its shape, gate up on the MLP's output, down_proj alone), every group is searched on
the block as it was, the scales are folded into the norms and linears before them, then every
linear is quantized (zero point, groups). No clipping search (AutoAWQ's asks for 64-row
multiples the fixture does not have).

  pip install --no-deps autoawq==0.2.9 accelerate
  tools/gen_awq_model_reference.py ../shared/data/flores200 [cohere]

With "cohere", the same for tests/fixtures/cohere-tiny-f32 with AutoAWQ's groups for Cohere
(CohereAWQForCausalLM.get_layers_for_scaling: q k v gate up, which read the one input norm,
measured on the whole decoder layer run on that norm's output; o_proj only where v_proj has its
shape; down_proj alone), BOS 5, into tests/golden/awq_model_ref_cohere.safetensors.

The fixture is tests/fixtures/llama-tiny-vocab-bf16 (grouped-query attention, so o_proj is not
scaled), run in float32 with an explicit causal mask; calibration: BOS + the Hugging Face
tokenizer's ids of FLORES-200 dev eng_Latn sentences one after another, cut into 8 sequences of
64 tokens. Writes tests/golden/awq_model_ref.safetensors: `ids` (I32 [8, 64]) and for the
paper's scales (`awq`) and AutoAWQ's duo scaling (`awq-duo`) `<config>.L<block>.<linear>` (F32
[out, in]): the weights the quantized model computes with, in terms of the unscaled inputs and
outputs, diag(1/row) Q(W') diag(1/col), W' the linear after apply_scale. The search is run with
.cpu() copying, as on the GPU (see gen_awq_reference.py)."""
import os, sys, types
import numpy as np
import torch, transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_awq_reference import cpu_copies  # noqa: E402


def main():
    flores = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    sys.modules.setdefault("datasets", types.ModuleType("datasets")).load_dataset = None
    import warnings
    warnings.simplefilter("ignore")
    from awq.quantize.quantizer import AwqQuantizer
    from awq.quantize.scale import apply_scale
    torch.set_num_threads(1)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    cohere = sys.argv[2:] == ["cohere"]
    path = os.path.join(root, "tests", "fixtures",
                        "cohere-tiny-f32" if cohere else "llama-tiny-vocab-bf16")
    bos = 5 if cohere else 1
    tok = transformers.AutoTokenizer.from_pretrained(path)
    with open(os.path.join(flores, "dev", "eng_Latn.dev"), encoding="utf-8") as f:
        sents = [l.rstrip("\n") for l in f]
    stream = []
    for s in sents:
        stream += [bos] + tok(s, add_special_tokens=False)["input_ids"]
        if len(stream) >= 8 * 64:
            break
    ids = torch.tensor(stream[:8 * 64]).view(8, 64)
    out = {"ids": ids.numpy().astype(np.int32)}
    for name, duo in (("awq", False), ("awq-duo", True)):
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
        q = AwqQuantizer.__new__(AwqQuantizer)
        q.w_bit, q.group_size, q.zero_point, q.duo_scaling = 4, 16, True, duo
        q.max_chunk_memory, q.n_parallel_calib_samples = 1 << 30, None
        n, T = ids.shape
        with torch.no_grad():
            inps = model.model.embed_tokens(ids)
            pos = torch.arange(T)[None].expand(n, -1)
            pe = model.model.rotary_emb(inps, pos)
            mask = torch.full((T, T), torch.finfo(torch.float32).min).triu(1)[None, None].expand(n, 1, T, T)
            kwargs = {"position_embeddings": pe, "attention_mask": mask, "position_ids": pos}
            for l, block in enumerate(model.model.layers):
                lin = {k: m for k, m in block.named_modules() if isinstance(m, torch.nn.Linear)}
                feats = {k: [] for k in lin}
                hooks = [m.register_forward_hook(lambda mod, i, o, k=k: feats[k].append(i[0].detach()))
                         for k, m in lin.items()]
                nxt = block(inps, **kwargs)
                nxt = nxt[0] if isinstance(nxt, tuple) else nxt
                for h in hooks:
                    h.remove()
                feat = {k: torch.cat(v, dim=0) for k, v in feats.items()}
                at, mlp = block.self_attn, block.mlp
                if cohere:
                    groups = [dict(prev_op=block.input_layernorm,
                                   layers=[at.q_proj, at.k_proj, at.v_proj, mlp.gate_proj, mlp.up_proj],
                                   inp=feat["self_attn.q_proj"], module2inspect=block, kwargs=kwargs)]
                else:
                    groups = [dict(prev_op=block.input_layernorm, layers=[at.q_proj, at.k_proj, at.v_proj],
                                   inp=feat["self_attn.q_proj"], module2inspect=at, kwargs=kwargs)]
                if at.v_proj.weight.shape == at.o_proj.weight.shape:
                    groups.append(dict(prev_op=at.v_proj, layers=[at.o_proj], inp=feat["self_attn.o_proj"]))
                if not cohere:
                    groups.append(dict(prev_op=block.post_attention_layernorm,
                                       layers=[mlp.gate_proj, mlp.up_proj],
                                       inp=feat["mlp.gate_proj"], module2inspect=mlp))
                groups.append(dict(prev_op=mlp.up_proj, layers=[mlp.down_proj], inp=feat["mlp.down_proj"]))
                with cpu_copies():
                    scales = [q._search_best_scale(block, **g) for g in groups]
                col = {k: torch.ones(m.in_features) for k, m in lin.items()}
                row = {k: torch.ones(m.out_features) for k, m in lin.items()}
                for prev, names, s in scales:
                    for k in names:
                        col[k] = col[k] * s
                    if prev in row:  # a linear before: its rows divided
                        row[prev] = row[prev] / s
                apply_scale(block, scales, input_feat_dict=feat)
                for k, m in lin.items():
                    m.weight.data = q.pseudo_quantize_tensor(m.weight.data)[0]
                    eff = m.weight.data / row[k].view(-1, 1) / col[k].view(1, -1)
                    out["%s.L%d.%s" % (name, l, k)] = eff.contiguous().numpy().astype(np.float32)
                inps = nxt
    from importlib.metadata import version
    from safetensors.numpy import save_file
    dst = os.path.join(root, "tests", "golden",
                       "awq_model_ref_cohere.safetensors" if cohere else "awq_model_ref.safetensors")
    save_file(out, dst, metadata={"autoawq": version("autoawq"), "torch": torch.__version__,
                                  "transformers": transformers.__version__})
    os.chmod(dst, 0o644)
    print("wrote", dst, len(out), "tensors")


if __name__ == "__main__":
    main()
