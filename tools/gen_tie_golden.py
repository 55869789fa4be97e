#!/usr/bin/env python3
"""Reference results on exact rounding ties: tests/golden/ties.safetensors.

`xt` [7, 256] holds blocks whose values lie exactly half-way between two levels of each
quantizer (all exact in f16, as ties are in F16/BF16 checkpoints): per row a block of 32
repeated at scales 2^-3 .. 2^4, built for Q8_0 (amax 127: d = 1), Q4_0 (-8: d = 1), Q4_1
(0..15), Q5_0 (-16), Q5_1 (0..31), a group whose zero point is a tie (min -6.5, max 8.5:
scale 1, -min / scale = 6.5), and a symmetric 4-bit group (amax 7).

  - llama.cpp's block formats and k-quants from ggml's own C reference quantizers
    (quantize_row_*_ref of ggml-quants.c, compiled alone as tools/gen_kquant_golden.py does):
    `<fmt>.data`, `<fmt>.deq`. Q8_0 rounds ties away from zero (roundf), Q4_0/Q5_0/Q4_1/Q5_1
    up ((int)(x + 8.5f), (int)(x + 0.5f)), the k-quants to even (nearest_int).
  - GPTQ's quantizer (AutoGPTQ 0.7.1's Quantizer.find_params / quantize, written out below in
    torch: range [min(x, 0), max(x, 0)], scale = (max - min) / maxq, zero = torch.round(-min /
    scale), q = clamp(torch.round(x / scale) + zero, 0, maxq)), which polyq's asymmetric
    round-to-nearest and GPTQ use: `gptq.<spec>.q` (U8 levels), `.scale`, `.zero`, for groups of
    32 at 4 bits and per row at 8 bits.
  - AutoAWQ 0.2.9's pseudo_quantize_tensor (zero point, groups of 32, 4 bits; written out
    below in torch): `awq.int4-g32.w` (F32, the dequantized weights).
  - polyq's symmetric round-to-nearest (d = amax / qmax, q = torch.round(x * (1 / d))): there
    is no outside implementation of this exact formula; torch.round gives the rule.
  pip install torch numpy safetensors
  pip download llama-cpp-python --no-binary :all: --no-deps; tar xzf llama_cpp_python-*.tar.gz
  tools/gen_tie_golden.py llama_cpp_python-*/vendor/llama.cpp
"""
import ctypes, os, sys
import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_kquant_golden import ggml_quants_lib, llama_cpp_version  # noqa: E402


def halves(lo, hi):
    """lo + 0.5, lo + 1.5, .. below hi"""
    return [lo + 0.5 + k for k in range(int(hi - lo))]


def block(anchor, ties):
    b = (list(anchor) + ties * 3)[:32]
    return np.array(b, dtype=np.float32)


def tie_rows():
    blocks = [block([127.0], halves(-15, 15)),             # Q8_0: d = 127 / 127
              block([-8.0], halves(-8, 7)),                # Q4_0: d = -8 / -8
              block([0.0, 15.0], halves(0, 15)),           # Q4_1: d = 15 / 15, min 0
              block([-16.0], halves(-16, 15)),             # Q5_0
              block([0.0, 31.0], halves(0, 31)),           # Q5_1
              block([-6.5, 8.5], halves(-7, 8)),           # zero point 6.5, scale 1
              block([7.0, -7.0], halves(-7, 7))]           # symmetric 4 bits: d = 7 / 7
    rows = [np.concatenate([b * np.float32(2.0 ** e) for e in range(-3, 5)]) for b in blocks]
    x = np.stack(rows).astype(np.float32)
    assert (x.astype(np.float16).astype(np.float32) == x).all()
    return x


def gptq_quantizer(x, bits, group):
    """AutoGPTQ's Quantizer (perchannel, sym=False) on each group of each row."""
    maxq = 2 ** bits - 1
    w = torch.from_numpy(x).reshape(-1, group)
    xmin = torch.minimum(w.min(1).values, torch.zeros(w.shape[0]))
    xmax = torch.maximum(w.max(1).values, torch.zeros(w.shape[0]))
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp], xmax[tmp] = -1, +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    q = torch.clamp(torch.round(w / scale.unsqueeze(1)) + zero.unsqueeze(1), 0, maxq)
    return (q.reshape(x.shape).numpy().astype(np.uint8),
            scale.reshape(x.shape[0], -1).numpy().astype(np.float32),
            zero.reshape(x.shape[0], -1).numpy().astype(np.uint8))


def awq_pseudo_quantize(x, bits, group):
    """AutoAWQ's pseudo_quantize_tensor with zero_point=True."""
    w = torch.from_numpy(x).reshape(-1, group)
    max_val, min_val = w.amax(dim=1, keepdim=True), w.amin(dim=1, keepdim=True)
    max_int, min_int = 2 ** bits - 1, 0
    scales = (max_val - min_val).clamp(min=1e-5) / max_int
    zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
    w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
    return w.reshape(x.shape).numpy().astype(np.float32)


def sym_rtn(x, bits, group):
    qmax = 2 ** (bits - 1) - 1
    w = torch.from_numpy(x).reshape(-1, group)
    d = w.abs().amax(dim=1, keepdim=True) / qmax
    q = torch.clamp(torch.round(w * (1.0 / d)), -qmax, qmax) + (qmax + 1)
    return q.reshape(x.shape).numpy().astype(np.uint8), d.reshape(x.shape[0], -1).numpy()


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    q = ggml_quants_lib(src)
    x = tie_rows()
    out = {"xt": x}
    sizes = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24}
    sizes_k = {"q2_k": 84, "q3_k": 110, "q4_k": 144, "q5_k": 176, "q6_k": 210}
    rows, k = x.shape
    for name, bb in list(sizes.items()) + list(sizes_k.items()):
        per = 32 if name in sizes else 256
        data = np.zeros(rows * (k // per) * bb, dtype=np.uint8)
        deq = np.zeros_like(x)
        cname = name.replace("_k", "_K")
        fq, fd = getattr(q, "quantize_row_%s_ref" % cname), getattr(q, "dequantize_row_%s" % cname)
        for r in range(rows):
            row = data[r * (k // per) * bb:(r + 1) * (k // per) * bb]
            xr = np.ascontiguousarray(x[r])
            fq(xr.ctypes.data_as(ctypes.c_void_p), row.ctypes.data_as(ctypes.c_void_p),
               ctypes.c_int64(k))
            fd(row.ctypes.data_as(ctypes.c_void_p), deq[r].ctypes.data_as(ctypes.c_void_p),
               ctypes.c_int64(k))
        out[name + ".data"], out[name + ".deq"] = data, deq
    for spec, bits, group in (("int4-g32", 4, 32), ("int8-channel-asym", 8, 256)):
        lv, sc, zp = gptq_quantizer(x, bits, group)
        out["gptq.%s.q" % spec], out["gptq.%s.scale" % spec], out["gptq.%s.zero" % spec] = lv, sc, zp
    out["awq.int4-g32.w"] = awq_pseudo_quantize(x, 4, 32)
    for spec, bits, group in (("int4-g32-sym", 4, 32), ("int8", 8, 256)):
        lv, d = sym_rtn(x, bits, group)
        out["sym.%s.q" % spec], out["sym.%s.scale" % spec] = lv, d.astype(np.float32)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden",
                        "ties.safetensors")
    save_file(out, path, metadata={"llama.cpp": llama_cpp_version(src), "torch": torch.__version__,
                                   "tool": "tools/gen_tie_golden.py"})
    os.chmod(path, 0o644)
    # how many values of xt are ties for each rule's grid
    print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
