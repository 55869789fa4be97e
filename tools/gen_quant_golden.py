#!/usr/bin/env python3
"""Reference bytes of the block formats polyq stores in other tools' layouts.

  pip install gguf bitsandbytes torch numpy safetensors
  tools/gen_quant_golden.py

llama.cpp's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 from gguf-py's numpy port of the ggml reference
quantizers (gguf.quants.quantize / dequantize); bitsandbytes' NF4 and FP4 from
bitsandbytes.functional.quantize_4bit on the CPU (blocksize 64), also with
compress_statistics=True (double quantization: `<fmt>-dq.qabsmax` U8, `<fmt>-dq.nested` F32,
the nested absmax then the offset, `<fmt>-dq.deq`). Writes
tests/golden/quant_blocks.safetensors: `x` (F32 [8, 256]: normal values, an all-zero block,
a constant block, exact ties of the rounding, outliers), and per format `<fmt>.data` (U8, the
stored bytes row after row), `<fmt>.deq` (F32, the tool's dequantization) and for
bitsandbytes `<fmt>.absmax` (F32 per block of 64)."""
import os
import numpy as np
import torch, gguf, bitsandbytes, safetensors
from gguf import quants
import bitsandbytes.functional as F
from safetensors.numpy import save_file, load_file


def inputs():
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((8, 256)).astype(np.float32)
    x[1, :32] = 0                                            # an all-zero block
    x[1, 64:128] = 0.75                                      # constant blocks
    x[2] *= 1e-3                                             # tiny weights
    x[3, 5] = 40.0                                           # outliers
    x[3, 200] = -55.0
    x[4, :64] = np.linspace(-1, 1, 64, dtype=np.float32)     # values on code midpoints
    x[5, :32] = np.arange(-16, 16, dtype=np.float32) * 0.25  # exact halves for the rounding
    x[6] = np.round(x[6] * 8) / 8
    return x


def main():
    x = inputs()
    out = {"x": x}
    for name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        t = getattr(gguf.GGMLQuantizationType, name)
        data = quants.quantize(x, t)
        out[name.lower() + ".data"] = np.ascontiguousarray(data.reshape(-1)).astype(np.uint8)
        out[name.lower() + ".deq"] = quants.dequantize(data, t).astype(np.float32)
    # bitsandbytes blocks run over the flat matrix: also rows of 25 (blocks spanning rows, a
    # short last block, an odd count)
    x2 = np.random.default_rng(99).standard_normal((7, 25)).astype(np.float32)
    out["x2"] = x2
    for src, sfx in ((x, ""), (x2, "2")):
        for qt in ("nf4", "fp4"):
            packed, state = F.quantize_4bit(torch.from_numpy(src.copy()), blocksize=64, quant_type=qt)
            out[qt + sfx + ".data"] = packed.reshape(-1).numpy().astype(np.uint8)
            out[qt + sfx + ".absmax"] = state.absmax.float().numpy()
            out[qt + sfx + ".deq"] = F.dequantize_4bit(packed, state).float().numpy()
            packed, state = F.quantize_4bit(torch.from_numpy(src.copy()), blocksize=64, quant_type=qt,
                                            compress_statistics=True)
            out[qt + "-dq" + sfx + ".data"] = packed.reshape(-1).numpy().astype(np.uint8)
            out[qt + "-dq" + sfx + ".qabsmax"] = state.absmax.numpy().astype(np.uint8)
            out[qt + "-dq" + sfx + ".nested"] = np.concatenate(
                [state.state2.absmax.float().numpy(), np.array([float(state.offset)], dtype=np.float32)])
            out[qt + "-dq" + sfx + ".deq"] = F.dequantize_4bit(packed, state).float().numpy()
    from importlib.metadata import version
    meta = {"gguf": version("gguf"), "bitsandbytes": bitsandbytes.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden",
                        "quant_blocks.safetensors")
    if os.path.exists(path):  # keep what other tools added (gen_kquant_golden.py)
        from safetensors import safe_open
        old = load_file(path)
        with safe_open(path, "np") as f:
            meta = {**(f.metadata() or {}), **meta}
        out = {**old, **out}
    save_file(out, path, metadata=meta)
    os.chmod(path, 0o644)
    print("wrote", path, {k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main()
