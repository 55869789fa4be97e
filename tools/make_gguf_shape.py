#!/usr/bin/env python3
"""A GGUF of a Llama model's shape in llama.cpp's Q4_K_M mixture, with random blocks and the
vocabulary of another GGUF: for measuring what a model of that size costs polyq in memory and
time (shapes and storage types are what matter there; the weights' values are noise, so its
perplexities mean nothing).

  python tools/make_gguf_shape.py VOCAB.gguf OUT.gguf [--embd 4096 --layers 32 --heads 32
      --kv-heads 32 --ff 11008]   (defaults: Llama-2-7B's shape)

Q4_K_M as llama-quantize assigns it (llama_tensor_get_type): Q6_K for the output matrix and,
in the first and last eighth of the layers and every third between, for attn_v and ffn_down;
Q4_K elsewhere. Needs numpy and gguf (pip install numpy gguf)."""
import argparse

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType, GGUFWriter

BLOCK = {T.Q4_K: (256, 144, (0, 2)), T.Q6_K: (256, 210, (208,))}  # weights, bytes, f16 scales at


def blocks(rng, rows, cols, qtype):
    n, nbytes, f16_at = BLOCK[qtype]
    assert cols % n == 0
    b = rng.integers(0, 256, size=(rows, cols // n, nbytes), dtype=np.uint8)
    for i, at in enumerate(f16_at):  # small finite super-block scales: d, then dmin
        v = np.frombuffer(np.float16(1e-4 if i == 0 else 5e-5).tobytes(), dtype=np.uint8)
        b[:, :, at:at + 2] = v
    return b.reshape(rows, -1)


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("out")
    ap.add_argument("--embd", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=32)
    ap.add_argument("--ff", type=int, default=11008)
    ap.add_argument("--ctx", type=int, default=4096)
    a = ap.parse_args()
    rd = GGUFReader(a.vocab)
    w = GGUFWriter(a.out, "llama")
    n_vocab = None
    for name, f in rd.fields.items():
        if not name.startswith("tokenizer."):
            continue
        v = f.contents()
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            w.add_array(name, v)
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(v)
        elif vt == GGUFValueType.STRING:
            w.add_string(name, v)
        elif vt == GGUFValueType.BOOL:
            w.add_bool(name, v)
        else:
            w.add_uint32(name, int(v))
    C, L, H, KV, I = a.embd, a.layers, a.heads, a.kv_heads, a.ff
    D = C // H
    w.add_name("llama-shape-%dx%d" % (L, C))
    w.add_context_length(a.ctx)
    w.add_embedding_length(C)
    w.add_block_count(L)
    w.add_feed_forward_length(I)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(D)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(15)  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    rng = np.random.default_rng(0)
    ones = np.ones(C, dtype=np.float32)

    def q(name, rows, cols, qtype):
        w.add_tensor(name, blocks(rng, rows, cols, qtype), raw_dtype=qtype)

    q("token_embd.weight", n_vocab, C, T.Q4_K)
    for i in range(L):
        more = more_bits(i, L)
        w.add_tensor("blk.%d.attn_norm.weight" % i, ones)
        q("blk.%d.attn_q.weight" % i, C, C, T.Q4_K)
        q("blk.%d.attn_k.weight" % i, KV * D, C, T.Q4_K)
        q("blk.%d.attn_v.weight" % i, KV * D, C, T.Q6_K if more else T.Q4_K)
        q("blk.%d.attn_output.weight" % i, C, C, T.Q4_K)
        w.add_tensor("blk.%d.ffn_norm.weight" % i, ones)
        q("blk.%d.ffn_gate.weight" % i, I, C, T.Q4_K)
        q("blk.%d.ffn_up.weight" % i, I, C, T.Q4_K)
        q("blk.%d.ffn_down.weight" % i, C, I, T.Q6_K if more else T.Q4_K)
    w.add_tensor("output_norm.weight", ones)
    q("output.weight", n_vocab, C, T.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
