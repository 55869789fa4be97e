#!/usr/bin/env python3
"""Reference bytes of llama.cpp's k-quants (Q2_K .. Q6_K), from ggml's own C reference
quantizers.

  pip download llama-cpp-python --no-binary :all: --no-deps   # its sdist holds llama.cpp
  tar xzf llama_cpp_python-*.tar.gz
  tools/gen_kquant_golden.py llama_cpp_python-*/vendor/llama.cpp

Compiles ggml/src/ggml-quants.c alone (ISO C11, no FMA contraction, no CPU-specific code),
calls quantize_row_q{2..6}_K_ref and dequantize_row_q{2..6}_K through ctypes on the input `x`
of tests/golden/quant_blocks.safetensors (8 rows of one super-block each; written by
gen_quant_golden.py) and on `xk` (3 rows of 512: two super-blocks per row, one row of zeros
in its first half), and adds `<fmt>.data` / `<fmt>.deq` (and `<fmt>k.*` for xk) to that
file, with the llama.cpp version in its metadata."""
import ctypes, os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open


def ggml_quants_lib(src):
    """ggml-quants.c of the llama.cpp tree `src`, compiled alone, loaded through ctypes."""
    ggml = os.path.join(src, "ggml")
    tmp = tempfile.mkdtemp()
    lib = os.path.join(tmp, "libggmlq.so")
    # the rest of ggml is not built: the few functions ggml-quants.c names for its checks of
    # other types abort if ever called (the reference quantizers never call them)
    stubs = os.path.join(tmp, "stubs.c")
    with open(stubs, "w") as f:
        f.write("#include <stdlib.h>\n#include <stddef.h>\n"
                "void ggml_abort(const char *f, int l, const char *fmt, ...) { abort(); }\n"
                "size_t ggml_row_size(int t, long n) { abort(); }\n"
                "const char *ggml_type_name(int t) { abort(); }\n"
                "size_t ggml_type_size(int t) { abort(); }\n")
    subprocess.check_call(["cc", "-std=c11", "-O1", "-ffp-contract=off", "-fPIC", "-shared",
                           "-D_GNU_SOURCE", "-I" + os.path.join(ggml, "include"),
                           "-I" + os.path.join(ggml, "src"),
                           os.path.join(ggml, "src", "ggml-quants.c"), stubs, "-lm", "-o", lib])
    return ctypes.CDLL(lib)


def llama_cpp_version(src):
    try:
        return subprocess.check_output(["git", "-C", src, "describe", "--tags"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        pkg = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(src))))
        return pkg or "unknown"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    q = ggml_quants_lib(src)
    sizes = {"q2_k": 84, "q3_k": 110, "q4_k": 144, "q5_k": 176, "q6_k": 210}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden",
                        "quant_blocks.safetensors")
    out = load_file(path)
    with safe_open(path, "np") as f:
        meta = dict(f.metadata() or {})
    rng = np.random.default_rng(4321)
    xk = rng.standard_normal((3, 512)).astype(np.float32)
    xk[1, :256] = 0
    xk[2] *= np.linspace(0.01, 3, 512, dtype=np.float32)
    out["xk"] = xk
    for name, bb in sizes.items():
        for x, sfx in ((out["x"], ""), (xk, "k")):
            x = np.ascontiguousarray(x, dtype=np.float32)
            rows, k = x.shape
            data = np.zeros(rows * (k // 256) * bb, dtype=np.uint8)
            deq = np.zeros_like(x)
            fq = getattr(q, "quantize_row_%s_ref" % name.replace("_k", "_K"))
            fd = getattr(q, "dequantize_row_%s" % name.replace("_k", "_K"))
            for r in range(rows):
                row = data[r * (k // 256) * bb:(r + 1) * (k // 256) * bb]
                fq(x[r].ctypes.data_as(ctypes.c_void_p), row.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(k))
                fd(row.ctypes.data_as(ctypes.c_void_p), deq[r].ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(k))
            out[name + sfx + ".data"] = data
            out[name + sfx + ".deq"] = deq
    meta["llama.cpp"] = llama_cpp_version(src)
    save_file(out, path, metadata=meta)
    os.chmod(path, 0o644)
    print("wrote", path, sorted(k for k in out if "_k" in k))


if __name__ == "__main__":
    main()
