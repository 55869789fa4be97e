#!/usr/bin/env python3
"""Reference GPTQ results from AutoGPTQ's own quantizer (auto_gptq.quantization.gptq.GPTQ),
run on the CPU, for polyq's comparison test (tests/test_quant.c, quant_gptq_matches_autogptq).

  BUILD_CUDA_EXT=0 pip install --no-deps --no-build-isolation auto-gptq==0.7.1
  tools/gen_gptq_reference.py

AutoGPTQ's package imports need accelerate/CUDA pieces, so its quantization/ files are loaded
on their own. A linear layer W [48, 192] and calibration inputs X [256, 192] with correlated
features and a few large channels (seeded); for each configuration the fake-quantized weights
Q that GPTQ.fasterquant leaves in the layer. Writes tests/golden/gptq_ref.safetensors: W, X,
and `<config>.q` (F32 [48, 192]); configs: int4 per channel asym, int4-g64 sym, int3-g32
act-order (static groups)."""
import importlib.util, os, sys, types
import numpy as np
import torch, transformers
from safetensors.numpy import save_file


def load_autogptq():
    import importlib.util as iu
    d = os.path.join(os.path.dirname(iu.find_spec("auto_gptq").origin), "quantization")
    pkg = types.ModuleType("agq")
    pkg.__path__ = [d]
    sys.modules["agq"] = pkg
    for name in ("quantizer", "gptq"):
        spec = importlib.util.spec_from_file_location("agq." + name, os.path.join(d, name + ".py"))
        m = importlib.util.module_from_spec(spec)
        sys.modules["agq." + name] = m
        spec.loader.exec_module(m)
    return sys.modules["agq.gptq"].GPTQ


def layer_data(seed, N=48, K=192, T=256):
    """A linear layer's weights W [N, K] and calibration inputs X [T, K]: correlated features and
    three channels 8 times larger than the rest (seeded)."""
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((N, K)) / 16).astype(np.float32)
    mix = rng.standard_normal((K, K)).astype(np.float32) * 0.2 + np.eye(K, dtype=np.float32)
    X = (rng.standard_normal((T, K)).astype(np.float32) @ mix).astype(np.float32)
    X[:, [3, 77, 150]] *= 8
    return W, X


def main():
    GPTQ = load_autogptq()
    torch.cuda.synchronize = lambda *a, **k: None  # fasterquant times itself with CUDA calls
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.set_num_threads(1)
    W, X = layer_data(2024)
    N, K = W.shape
    T = X.shape[0]
    out = {"W": W, "X": X}
    configs = {"int4": (4, -1, False, False), "int4-g64-sym": (4, 64, True, False),
               "int3-g32-act": (3, 32, False, True)}
    for name, (bits, group, sym, act) in configs.items():
        layer = torch.nn.Linear(K, N, bias=False)
        layer.weight.data = torch.from_numpy(W.copy())
        g = GPTQ(layer)
        g.quantizer.configure(bits, perchannel=True, sym=sym, mse=False)
        for i in range(0, T, 128):  # calibration batches
            g.add_batch(torch.from_numpy(X[i:i + 128]), None)
        g.fasterquant(blocksize=128, percdamp=0.01, group_size=group, actorder=act, static_groups=act)
        out[name + ".q"] = layer.weight.data.numpy().astype(np.float32).copy()
    from importlib.metadata import version
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "gptq_ref.safetensors")
    save_file(out, path, metadata={"auto_gptq": version("auto-gptq"), "torch": torch.__version__,
                                   "numpy": np.__version__})
    os.chmod(path, 0o644)
    print("wrote", path)


if __name__ == "__main__":
    main()
