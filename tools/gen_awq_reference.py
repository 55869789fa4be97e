#!/usr/bin/env python3
"""Reference AWQ scale search from AutoAWQ's own quantizer (awq.quantize.quantizer.AwqQuantizer,
its _compute_best_scale and pseudo_quantize_tensor), run on the CPU in float32, for polyq's
comparison test (tests/test_quant.c, quant_awq_matches_autoawq).

  pip install --no-deps autoawq==0.2.9 accelerate
  tools/gen_awq_reference.py

AutoAWQ's package imports `datasets` for its calibration loader, which is not used here: a
stand-in module is put in its place. Its search is run with .cpu() copying, as on the GPU it
is written for (see cpu_copies). One linear layer W [48, 192] inspected on its own output
(what AutoAWQ does for o_proj, down_proj and OPT's fc1/fc2), calibration inputs X [256, 192]
with correlated features and a few large channels (seeded), zero-point quantization, the
activation-only scales of the AWQ paper (duo_scaling=False) and AutoAWQ's default duo scaling. For each configuration: the chosen
scales, the grid ratio they come from, and the weights Q(W·s)/s the layer computes with.
Writes tests/golden/awq_ref.safetensors: W, X, `<config>.scales` (F32 [192]), `<config>.ratio`
(F32 [1]), `<config>.q` (F32 [48, 192]); configs int4-g64, int3-g32 and int4-g64-duo."""
import os, sys, types
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_gptq_reference import layer_data  # noqa: E402


class cpu_copies:
    """_compute_best_scale saves the module's weights as {k: v.cpu()} and scales them in place
    for each candidate. On the GPU AutoAWQ runs on, .cpu() is a copy; on the CPU it returns the
    same tensor, so the saved "original" weights would be the first candidate's scaled ones.
    Within this context .cpu() of a CPU tensor copies too, as on the GPU."""

    def __enter__(self):
        self.cpu = torch.Tensor.cpu
        torch.Tensor.cpu = lambda t, *a, **k: t.clone() if t.device.type == "cpu" else self.cpu(t, *a, **k)

    def __exit__(self, *exc):
        torch.Tensor.cpu = self.cpu


def main():
    sys.modules.setdefault("datasets", types.ModuleType("datasets")).load_dataset = None
    import warnings
    warnings.simplefilter("ignore")
    from awq.quantize.quantizer import AwqQuantizer
    torch.set_num_threads(1)
    W, X = layer_data(2025)
    N, K = W.shape
    T = X.shape[0]
    out = {"W": W, "X": X}
    configs = {"int4-g64": (4, 64, False), "int3-g32": (3, 32, False), "int4-g64-duo": (4, 64, True)}
    for name, (bits, group, duo) in configs.items():
        q = AwqQuantizer.__new__(AwqQuantizer)
        q.w_bit, q.group_size, q.zero_point, q.duo_scaling = bits, group, True, duo
        q.max_chunk_memory, q.n_parallel_calib_samples = 1 << 30, None
        lin = torch.nn.Linear(K, N, bias=False)
        lin.weight.data = torch.from_numpy(W.copy())
        x = torch.from_numpy(X.copy())[None]
        x_mean = x.abs().view(-1, K).to(torch.float32).sum(0) / T  # as _search_best_scale
        wg = lin.weight.data.view(-1, group)  # as _search_best_scale
        w_mean = (wg.abs() / (wg.abs().amax(dim=1, keepdim=True) + 1e-6)).view(N, K).mean(0)
        with torch.no_grad(), cpu_copies():
            ref = q._module_forward(x, lin, {})
            s = q._compute_best_scale(x, w_mean, x_mean, lin, [lin], ref, {})
        ratio = -1.0
        for r in range(20):  # which grid point the scales are
            c = (x_mean.pow(r / 20) / (w_mean.pow(1 - r / 20) + 1e-4) if duo else x_mean.pow(r / 20)).clamp(min=1e-4)
            c = c / (c.max() * c.min()).sqrt()
            if torch.equal(c, s):
                ratio = r / 20
        wq = q.pseudo_quantize_tensor(torch.from_numpy(W) * s.view(1, -1))[0] / s.view(1, -1)
        out[name + ".scales"] = s.numpy().astype(np.float32)
        out[name + ".ratio"] = np.array([ratio], dtype=np.float32)
        out[name + ".q"] = wq.numpy().astype(np.float32)
        print(name, "ratio", ratio)
    from importlib.metadata import version
    from safetensors.numpy import save_file
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "awq_ref.safetensors")
    save_file(out, path, metadata={"autoawq": version("autoawq"), "torch": torch.__version__, "numpy": np.__version__})


if __name__ == "__main__":
    main()
