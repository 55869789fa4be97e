#!/usr/bin/env python3
"""llama.cpp's negative log-likelihood of FLORES-200 devtest sentences for a real GGUF model,
as the golden polyq's full-precision numbers are checked against (tests/golden/<name>_nll.txt:
'lang line n_tokens nll_nats' per sentence).

The quantized file is first written as F32 by llama.cpp's llama-quantize (the same weight
values, dequantized), so llama.cpp computes in f32 as polyq does; tools/llama_sentence_nll.c,
built against libllama (tools/build_llama_cpp.sh, from the llama-cpp-python sdist), scores
each sentence after the vocabulary's BOS, every token, F32 KV cache, no flash attention.
With --as-is the file is scored as it is instead: llama.cpp's CPU numerics on the quantized
blocks (activations quantized per block, integer dot products; F32 KV cache, no flash
attention), the golden of polyq's "-llamacpp" specs (tests/golden/<name>_nll_llamacpp.txt).
Only the numbers are committed.
Usage: tools/gen_llama_nll_golden.py SHARED_DIR MODEL.gguf NAME N_SENTENCES LANG... [--work DIR]
       [--as-is]
"""
import glob, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402


def main():
    args = sys.argv[1:]
    work = llama_cpp_build.work_arg(args)
    as_is = "--as-is" in args
    if as_is:
        args.remove("--as-is")
    shared, model, name, n = args[0], args[1], args[2], int(args[3])
    langs = args[4:]
    exe = llama_cpp_build.compile_tool(work, "llama_sentence_nll")
    out, _ = llama_cpp_build.build(work)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "model-f32.gguf")
        if as_is:
            f32 = model
        else:
            subprocess.run([os.path.join(out, "llama-quantize"), "--allow-requantize", model, f32,
                            "F32"], check=True, capture_output=True)
        rows = []
        for lang in langs:
            text = os.path.join(shared, "data/flores200/devtest/%s.devtest" % lang)
            res = subprocess.run([exe, f32, text, str(n)], check=True, capture_output=True,
                                 text=True).stdout.split("\n")
            rows += ["%s %d %s" % (lang, i + 1, r) for i, r in enumerate(res) if r]
    commit = llama_cpp_build.build(work)[1]
    dest = os.path.join(HERE, "..", "tests", "golden",
                        "%s_nll%s.txt" % (name, "_llamacpp" if as_is else ""))
    how = "as it is (llama.cpp's CPU numerics)" if as_is else "as F32 (llama-quantize)"
    with open(dest, "w") as f:
        f.write("# %s %s, llama.cpp %s: lang line n_tokens nll_nats, each sentence after BOS\n"
                % (os.path.basename(model), how, commit))
        f.write("\n".join(rows) + "\n")
    print("wrote", dest, len(rows), "sentences")


if __name__ == "__main__":
    main()
