#!/usr/bin/env python3
"""Makes the tiny random-init models under tests/fixtures/ and their reference logits.

Each fixture is a Hugging Face model directory (config.json + safetensors, as save_pretrained
writes it) plus golden.safetensors: for each test input i, `ids.i` (I32, shape [T]) and
`logits.i` (F32, shape [T, vocab]) computed by transformers in float32 from the stored weights.
Every parameter (LayerNorm gains and all biases too) is drawn at random so no term of the
forward pass can be skipped without the C test noticing. Versions are pinned in the metadata.
Usage: tools/gen_fixtures.py SHARED_DIR [encoders|rope|qwen|gemma|gemma2|phi3|cohere|gemma3mm]
(run from anywhere; writes into tests/fixtures/; "encoders" makes only the BERT and XLM-R fixtures, "rope" only the
Llama rope-scaling ones, "qwen" only the Qwen2 and Qwen3 ones, "gemma" only Gemma 3's, "gemma2"
only Gemma 2's, "phi3" only Phi-3's, "cohere" only Cohere's and Cohere2's, "gemma3mm" only
the multimodal Gemma 3's)
"""
import json, os, shutil, sys
import numpy as np
import torch, transformers, tokenizers, safetensors
from safetensors.torch import save_file
from transformers import (BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM,
                          GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM,
                          BloomConfig, BloomForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          OPTConfig, OPTForCausalLM)

sys.path.insert(0, os.path.dirname(__file__))
from gen_tok_golden import gpt2_tokenizer
from tokenizers import Tokenizer, models, pre_tokenizers, decoders

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__}


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("ln_" in name or "norm" in name) and name.endswith(".weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "wte" in name or "wpe" in name or "embed" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.12 * torch.randn(p.shape, generator=g))


def write_golden(model_dir, dtype, inputs, cls):
    model = cls.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    tensors = {}
    with torch.no_grad():
        for i, ids in enumerate(inputs):
            x = torch.tensor([ids], dtype=torch.long)
            logits = model(input_ids=x).logits[0].float().contiguous()
            tensors["ids.%d" % i] = torch.tensor(ids, dtype=torch.int32)
            tensors["logits.%d" % i] = logits
    meta = dict(VERSIONS)
    meta["stored_dtype"] = dtype
    meta["n_inputs"] = str(len(inputs))
    save_file(tensors, os.path.join(model_dir, "golden.safetensors"), metadata=meta)


def small_byte_bpe(shared, specials, vocab_size=300):
    """A byte-level BPE tokenizer (GPT-2 style) with vocab_size ids, trained on FLORES-200 dev
    text, so the small-vocabulary fixtures can be evaluated on real text end to end."""
    from tokenizers import trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    lines = []
    for lang in ("eng_Latn", "hin_Deva", "zho_Hans"):
        with open(os.path.join(shared, "data/flores200/dev", lang + ".dev"), encoding="utf-8") as f:
            lines += f.read().splitlines()[:200]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return tok


def attach_tokenizer(out, tok, bos):
    tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": bos, "eos_token": bos}, f, indent=2)
    os.chmod(os.path.join(out, "tokenizer.json"), 0o644)
    os.chmod(os.path.join(out, "tokenizer_config.json"), 0o644)


def make_gpt2(name, seed, dtype, cfg, inputs_fn, shard=None, tokenizer_dir=None):
    make_model(name, seed, dtype, GPT2Config, GPT2LMHeadModel, cfg, inputs_fn, shard, tokenizer_dir)


def make_model(name, seed, dtype, config_cls, cls, cfg, inputs_fn, shard=None, tokenizer_dir=None):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    config = config_cls(**cfg)
    model = cls(config).eval()
    randomize(model, seed)
    model = model.to({"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype])
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, **kw)
    if tokenizer_dir:
        tok = gpt2_tokenizer(tokenizer_dir)
        tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                       "unk_token": "<|endoftext|>", "model_max_length": cfg["n_positions"],
                       "add_prefix_space": False, "tokenizer_class": "GPT2Tokenizer"}, f, indent=2)
    rng = np.random.default_rng(seed)
    write_golden(out, dtype, inputs_fn(rng, cfg), cls)
    for f in os.listdir(out):
        os.chmod(os.path.join(out, f), 0o644)
    print("wrote", out, sorted(os.listdir(out)))


def small_inputs(rng, cfg):
    v, n = cfg["vocab_size"], cfg.get("n_positions") or cfg["max_position_embeddings"]
    return [[int(x) for x in rng.integers(0, v, size=t)] for t in (1, 7, 33, n)]


def torch_checkpoints():
    """pytorch_model.bin fixtures: gpt2-tiny-f32's weights as a sharded torch.save checkpoint
    (the same golden logits), a file with strided views and several dtypes, and a pickle that
    calls os.system, which must be refused."""
    import zipfile
    from safetensors.torch import load_file
    src = os.path.join(ROOT, "gpt2-tiny-f32")
    out = os.path.join(ROOT, "gpt2-tiny-bin-sharded")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    sd = load_file(os.path.join(src, "model.safetensors"))
    names = sorted(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    weight_map = {}
    for file, keys in shards.items():
        torch.save({k: sd[k] for k in keys}, os.path.join(out, file))
        weight_map.update({k: file for k in keys})
    with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    for f in ("config.json", "golden.safetensors"):
        shutil.copy(os.path.join(src, f), os.path.join(out, f))
    tdir = os.path.join(ROOT, "torch")
    os.makedirs(tdir, exist_ok=True)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"base": base, "t": base.t(), "slice": base[1:, 1:3], "h": base.to(torch.float16),
                "bf": base.to(torch.bfloat16), "i64": torch.arange(5), "scalar": torch.tensor(2.5)},
               os.path.join(tdir, "views.bin"))
    evil = (b"\x80\x02}q\x00X\x01\x00\x00\x00ac" + b"os\nsystem\n" +
            b"X\x04\x00\x00\x00trueq\x01\x85R" + b"s.")
    with zipfile.ZipFile(os.path.join(tdir, "evil.bin"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("evil/data.pkl", evil)
        z.writestr("evil/version", "3\n")
    for d in (out, tdir):
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o644)


def encoders():
    """BERT (mBERT's config: post-LN, 2 token types, LayerNorm eps 1e-12, erf GELU) and
    XLM-R (positions after padding_idx 1, one token type, eps 1e-5), each with its stand-in
    tokenizer (tools/gen_tok_golden.py) so the pseudo-log-likelihood can run on real text."""
    for name, seed, config_cls, cls, cfg, tokdir in (
            ("bert-tiny-f32", 14, BertConfig, BertForMaskedLM,
             dict(vocab_size=8000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=128, type_vocab_size=2,
                  layer_norm_eps=1e-12, pad_token_id=0), "mbert-standin"),
            ("xlmr-tiny-f32", 15, XLMRobertaConfig, XLMRobertaForMaskedLM,
             dict(vocab_size=8002, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                  layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2), "xlmr-standin")):
        V = cfg["vocab_size"]
        make_model(name, seed, "f32", config_cls, cls, cfg,
                   lambda rng, c: [[int(x) for x in rng.integers(0, V, size=t)] for t in (1, 9, 40)])
        out = os.path.join(ROOT, name)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(ROOT, "tokenizers", tokdir, f), os.path.join(out, f))
            os.chmod(os.path.join(out, f), 0o644)


def rope_scaling():
    """Llama with rope scaling as longer-context checkpoints configure it: linear (factor 2)
    and llama3 (factor 4, frequency bands from an original context of 32 of the 64 used)."""
    llama = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 num_hidden_layers=2, intermediate_size=160, max_position_embeddings=64,
                 rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    make_model("llama-tiny-rope-linear-f32", 16, "f32", LlamaConfig, LlamaForCausalLM,
               dict(llama, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}),
               small_inputs)
    make_model("llama-tiny-rope-llama3-f32", 17, "f32", LlamaConfig, LlamaForCausalLM,
               dict(llama, rope_parameters={"rope_type": "llama3", "factor": 4.0, "rope_theta": 10000.0,
                                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                            "original_max_position_embeddings": 32}),
               small_inputs)


def qwen(shared):
    """Qwen2 (q/k/v biases, tied embeddings as Qwen2.5-0.5B) and Qwen3 (per-head q/k RMSNorm,
    head_dim 32 with hidden_size 64 and 4 heads, so heads x head_dim is twice the hidden size;
    untied), both with grouped-query attention and a small byte-level BPE trained on FLORES-200
    dev so they evaluate real text."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM
    base = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                num_hidden_layers=2, intermediate_size=160, max_position_embeddings=64,
                rms_norm_eps=1e-6, bos_token_id=0, eos_token_id=0, use_sliding_window=False)
    make_model("qwen2-tiny-f32", 18, "f32", Qwen2Config, Qwen2ForCausalLM,
               dict(base, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                    tie_word_embeddings=True), small_inputs)
    make_model("qwen3-tiny-f32", 19, "f32", Qwen3Config, Qwen3ForCausalLM,
               dict(base, head_dim=32, rope_parameters={"rope_type": "default", "rope_theta": 5000.0},
                    tie_word_embeddings=False), small_inputs)
    for name in ("qwen2-tiny-f32", "qwen3-tiny-f32"):
        attach_tokenizer(os.path.join(ROOT, name), small_byte_bpe(shared, ["<|endoftext|>"]),
                         "<|endoftext|>")


def gemma(shared):
    """Gemma 3 text (gemma3_text): local and global layers (layer_types) with a window of 8 on
    inputs up to 64, local rotary base 10000 and a global one of 1e6 scaled linearly by 2,
    head_dim 32 (4 x 32 on hidden 64), query_pre_attn_scalar 24 (not the head width), GQA,
    tied head, every norm weight random (Gemma's 1 + w), a small byte-level BPE."""
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM
    cfg = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
               head_dim=32, num_hidden_layers=4, intermediate_size=160, max_position_embeddings=64,
               rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
               query_pre_attn_scalar=24, sliding_window=8,
               layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
               rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
               tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh")
    make_model("gemma3-tiny-f32", 20, "f32", Gemma3TextConfig, Gemma3ForCausalLM, cfg, small_inputs)
    attach_tokenizer(os.path.join(ROOT, "gemma3-tiny-f32"),
                     small_byte_bpe(shared, ["<pad>", "<eos>", "<bos>"]), "<bos>")


def gemma2(shared):
    """Gemma 2: layers alternating local (window 8) and global as Gemma2Config lays them out,
    soft-capping small enough to bend the scores (attention 2.5, logits 4), head_dim 32 on
    hidden 64, query_pre_attn_scalar 24, GQA, tied head, every norm weight random."""
    from transformers import Gemma2Config, Gemma2ForCausalLM
    cfg = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
               head_dim=32, num_hidden_layers=4, intermediate_size=160, max_position_embeddings=64,
               rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
               query_pre_attn_scalar=24, sliding_window=8, attn_logit_softcapping=2.5,
               final_logit_softcapping=4.0,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
               tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh")
    make_model("gemma2-tiny-f32", 21, "f32", Gemma2Config, Gemma2ForCausalLM, cfg, small_inputs)
    attach_tokenizer(os.path.join(ROOT, "gemma2-tiny-f32"),
                     small_byte_bpe(shared, ["<pad>", "<eos>", "<bos>"]), "<bos>")


def phi3(shared):
    """Phi-3: fused qkv_proj and gate_up_proj, grouped-query attention, rotary over half of each
    head (partial_rotary_factor 0.5, as Phi-4-mini sets it), a sliding window of 8 on inputs up
    to 64 (Phi-3-mini-4k's is 2047), untied head, a small byte-level BPE."""
    from transformers import Phi3Config, Phi3ForCausalLM
    cfg = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
               num_hidden_layers=2, intermediate_size=160, max_position_embeddings=64,
               original_max_position_embeddings=64, rms_norm_eps=1e-5, bos_token_id=1,
               eos_token_id=2, pad_token_id=0, sliding_window=8, tie_word_embeddings=False,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                "partial_rotary_factor": 0.5})
    make_model("phi3-tiny-f32", 22, "f32", Phi3Config, Phi3ForCausalLM, cfg, small_inputs)
    attach_tokenizer(os.path.join(ROOT, "phi3-tiny-f32"),
                     small_byte_bpe(shared, ["<unk>", "<s>", "</s>"]), "<s>")


def cohere(shared):
    """Cohere as Aya Expanse 8B sets it (grouped-query attention, no q/k norm, tied head) with a
    logit_scale of 0.25 (not the 0.0625 default) and every LayerNorm weight random; Cohere with
    use_qk_norm as Command R+ sets it (a LayerNorm weight per head); Cohere2 with layers 0-2
    local through a window of 8 and layer 3 global (its default pattern of 4), on inputs up to
    64. Cohere's special tokens at the start of a small byte-level BPE."""
    from transformers import CohereConfig, CohereForCausalLM, Cohere2Config, Cohere2ForCausalLM
    base = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                num_hidden_layers=2, intermediate_size=160, max_position_embeddings=64,
                layer_norm_eps=1e-5, logit_scale=0.25, bos_token_id=5, eos_token_id=6,
                pad_token_id=0, tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    make_model("cohere-tiny-f32", 23, "f32", CohereConfig, CohereForCausalLM, base, small_inputs)
    make_model("cohere-tiny-qknorm-f32", 24, "f32", CohereConfig, CohereForCausalLM,
               dict(base, use_qk_norm=True), small_inputs)
    make_model("cohere2-tiny-f32", 25, "f32", Cohere2Config, Cohere2ForCausalLM,
               dict(base, num_hidden_layers=4, sliding_window=8), small_inputs)
    specials = ["<PAD>", "<UNK>", "<CLS>", "<SEP>", "<MASK_TOKEN>", "<BOS_TOKEN>", "<EOS_TOKEN>"]
    for name in ("cohere-tiny-f32", "cohere-tiny-qknorm-f32", "cohere2-tiny-f32"):
        attach_tokenizer(os.path.join(ROOT, name), small_byte_bpe(shared, specials), "<BOS_TOKEN>")


def gemma3_multimodal(shared):
    """Gemma 3 4B and up as published: Gemma3ForConditionalGeneration (model_type gemma3) with the
    text model's settings under text_config and a vision tower (SigLIP, tiny here). The text
    model is gemma3-tiny-f32's shape with 8 heads and 4 kv heads, Gemma3TextConfig's defaults,
    which config.json then leaves out as the published text_config does (it names only what
    differs from them). Weights as transformers 5 saves them (model.language_model.*), and a
    copy under the names of the published checkpoints (language_model.model.*,
    vision_tower.vision_model.*, multi_modal_projector.*), which transformers reads the same."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
    from safetensors.torch import load_file
    text = dict(vocab_size=300, hidden_size=64, num_attention_heads=8, num_key_value_heads=4,
                head_dim=16, num_hidden_layers=4, intermediate_size=160, max_position_embeddings=64,
                rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                query_pre_attn_scalar=24, sliding_window=8,
                layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
                rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh")
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=28, patch_size=14)
    cfg = dict(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4,
               boi_token_index=297, eoi_token_index=298, image_token_index=299)
    name = "gemma3mm-tiny-f32"
    make_model(name, 26, "f32", Gemma3Config, Gemma3ForConditionalGeneration, cfg, lambda rng, c:
               small_inputs(rng, dict(vocab_size=297, max_position_embeddings=64)))
    out = os.path.join(ROOT, name)
    with open(os.path.join(out, "config.json")) as f:
        conf = json.load(f)
    for k in ("num_attention_heads", "num_key_value_heads"):  # Gemma3TextConfig's defaults
        del conf["text_config"][k]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    attach_tokenizer(out, small_byte_bpe(shared, ["<pad>", "<eos>", "<bos>"]), "<bos>")
    hub = os.path.join(ROOT, "gemma3mm-tiny-hub-f32")
    shutil.rmtree(hub, ignore_errors=True)
    os.makedirs(hub)
    sd = load_file(os.path.join(out, "model.safetensors"))
    renamed = {}
    for k, v in sd.items():
        for new, old in (("model.language_model.", "language_model.model."),
                         ("model.vision_tower.", "vision_tower."),
                         ("model.multi_modal_projector.", "multi_modal_projector.")):
            if k.startswith(new):
                k = old + k[len(new):]
                break
        renamed[k] = v.contiguous()
    save_file(renamed, os.path.join(hub, "model.safetensors"), metadata={"format": "pt"})
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(out, f), os.path.join(hub, f))
    os.symlink(os.path.join("..", name, "golden.safetensors"), os.path.join(hub, "golden.safetensors"))
    # the published layout reads the same in transformers
    g = load_file(os.path.join(out, "golden.safetensors"))
    m = Gemma3ForConditionalGeneration.from_pretrained(hub, dtype=torch.float32).eval()
    with torch.no_grad():
        ids = g["ids.2"].long()[None]
        assert torch.equal(m(input_ids=ids).logits[0], g["logits.2"]), "published layout differs"
    for d in (out, hub):
        for f in os.listdir(d):
            if not os.path.islink(os.path.join(d, f)):
                os.chmod(os.path.join(d, f), 0o644)
    print("wrote", hub, sorted(os.listdir(hub)))


def main():
    shared = sys.argv[1]
    if sys.argv[2:] == ["gemma3mm"]:
        gemma3_multimodal(shared)
        return
    if sys.argv[2:] == ["cohere"]:
        cohere(shared)
        return
    if sys.argv[2:] == ["phi3"]:
        phi3(shared)
        return
    if sys.argv[2:] == ["gemma2"]:
        gemma2(shared)
        return
    if sys.argv[2:] == ["gemma"]:
        gemma(shared)
        return
    if sys.argv[2:] == ["qwen"]:
        qwen(shared)
        return
    if sys.argv[2:] == ["encoders"]:
        encoders()
        return
    if sys.argv[2:] == ["rope"]:
        rope_scaling()
        return
    small = dict(vocab_size=300, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                 bos_token_id=0, eos_token_id=0)
    make_gpt2("gpt2-tiny-f32", 1, "f32", small, small_inputs)
    make_gpt2("gpt2-tiny-f16-sharded", 2, "f16", dict(small, activation_function="gelu"),
              small_inputs, shard="60KB")
    # GPT-2 options other checkpoints set (mGPT-sized context, unscaled and layer-scaled attention)
    make_gpt2("gpt2-tiny-options-f32", 13, "f32",
              dict(small, n_positions=96, activation_function="relu", scale_attn_weights=False,
                   scale_attn_by_inverse_layer_idx=True, n_inner=96), small_inputs)
    # GPT-NeoX (Pythia's quirks: partial rotary, parallel residual, untied head, erf GELU)
    neox = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                intermediate_size=256, max_position_embeddings=64, rotary_pct=0.25,
                rotary_emb_base=10000, use_parallel_residual=True, tie_word_embeddings=False,
                bos_token_id=0, eos_token_id=0)
    make_model("neox-tiny-f32", 4, "f32", GPTNeoXConfig, GPTNeoXForCausalLM, neox, small_inputs)
    attach_tokenizer(os.path.join(ROOT, "neox-tiny-f32"), small_byte_bpe(shared, ["<|endoftext|>"]),
                     "<|endoftext|>")
    make_model("neox-tiny-seqres-f16", 5, "f16", GPTNeoXConfig, GPTNeoXForCausalLM,
               dict(neox, use_parallel_residual=False, rotary_pct=0.5, rotary_emb_base=500),
               small_inputs)
    # OPT: pre-LN with word_embed_proj_dim != hidden_size (as opt-350m projects), and post-LN
    opt = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
               ffn_dim=256, max_position_embeddings=64, word_embed_proj_dim=32,
               do_layer_norm_before=True, bos_token_id=2, eos_token_id=2, pad_token_id=1)
    make_model("opt-tiny-proj-f32", 6, "f32", OPTConfig, OPTForCausalLM, opt, small_inputs)
    attach_tokenizer(os.path.join(ROOT, "opt-tiny-proj-f32"),
                     small_byte_bpe(shared, ["<s>", "<pad>", "</s>"]), "</s>")
    make_model("opt-tiny-postln-f32", 7, "f32", OPTConfig, OPTForCausalLM,
               dict(opt, word_embed_proj_dim=64, do_layer_norm_before=False), small_inputs)
    # Llama with grouped-query attention; Mistral with a window shorter than the inputs
    llama = dict(vocab_size=300, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 num_hidden_layers=2, intermediate_size=160, max_position_embeddings=64,
                 rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1, eos_token_id=2,
                 tie_word_embeddings=False)
    make_model("llama-tiny-gqa-f32", 8, "f32", LlamaConfig, LlamaForCausalLM, llama, small_inputs)
    make_model("mistral-tiny-swa-f32", 9, "f32", MistralConfig, MistralForCausalLM,
               dict(llama, sliding_window=16, rope_theta=1000.0), small_inputs)
    attach_tokenizer(os.path.join(ROOT, "mistral-tiny-swa-f32"),
                     small_byte_bpe(shared, ["<unk>", "<s>", "</s>"]), "<s>")
    # Llama with Llama-2's real tokenizer (32000 ids), bf16
    ltdir = os.path.join(shared, "data/tokenizers/Llama-2-7b-hf")
    ltok = Tokenizer.from_file(os.path.join(ltdir, "tokenizer.json"))
    lids = [1] + ltok.encode("Le chat dort. 猫在睡觉。", add_special_tokens=False).ids
    make_model("llama-tiny-vocab-bf16", 10, "bf16", LlamaConfig, LlamaForCausalLM,
               dict(llama, vocab_size=32000, hidden_size=32, intermediate_size=64,
                    max_position_embeddings=1024), lambda rng, cfg: [lids[:6]])
    out = os.path.join(ROOT, "llama-tiny-vocab-bf16")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(ltdir, f), os.path.join(out, f))
        os.chmod(os.path.join(out, f), 0o644)
    # BLOOM: ALiBi with a power-of-two and a non-power-of-two head count; the first carries
    # the stand-in BLOOM tokenizer (tools/gen_tok_golden.py bloom-standin)
    bloom = dict(vocab_size=8000, hidden_size=32, n_head=4, n_layer=2, bos_token_id=1,
                 eos_token_id=2, pad_token_id=3)
    make_model("bloom-tiny-f32", 11, "f32", BloomConfig, BloomForCausalLM, bloom,
               lambda rng, cfg: [[int(x) for x in rng.integers(0, 8000, size=t)] for t in (1, 7, 20)])
    attach_tokenizer(os.path.join(ROOT, "bloom-tiny-f32"),
                     Tokenizer.from_file(os.path.join(ROOT, "tokenizers/bloom-standin/tokenizer.json")), "<s>")
    make_model("bloom-tiny-6heads-postres-f16", 12, "f16", BloomConfig, BloomForCausalLM,
               dict(bloom, vocab_size=300, hidden_size=48, n_head=6,
                    apply_residual_connection_post_layernorm=True),
               lambda rng, cfg: [[int(x) for x in rng.integers(0, 300, size=t)] for t in (1, 7, 33, 64)])
    torch_checkpoints()
    real = dict(vocab_size=50257, n_positions=1024, n_embd=32, n_layer=2, n_head=4,
                bos_token_id=50256, eos_token_id=50256)
    tdir = os.path.join(shared, "data/tokenizers/gpt2")
    tok = gpt2_tokenizer(tdir)
    text = "The quick brown fox"
    ids = [50256] + tok.encode(text, add_special_tokens=False).ids
    make_gpt2("gpt2-tiny-vocab-bf16", 3, "bf16", real,
              lambda rng, cfg: [ids, [50256, 50255, 0]], tokenizer_dir=tdir)


if __name__ == "__main__":
    main()
