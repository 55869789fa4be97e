#!/usr/bin/env python3
"""llama.cpp's negative log-likelihood of FLORES-200 devtest sentences for GGUF files that
polyq writes from a test fixture, one per ggml format, scored as the files are (llama.cpp's CPU
numerics: activations quantized per block, integer dot products; tools/llama_sentence_nll.c:
F32 KV cache, no flash attention): the golden of `polyq eval FILE.gguf --quant fp32-llamacpp`
(tests/golden/llama_numerics_nll.txt: '# sha256 SPEC HASH' for each file, then
'SPEC lang line n_tokens nll_nats' per sentence). llama.cpp is built from the llama-cpp-python
sdist outside the repository (tools/build_llama_cpp.sh); only the numbers are committed.
Usage: tools/gen_llama_numerics_golden.py SHARED_DIR POLYQ_BIN [--work DIR]
"""
import hashlib, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402

FIXTURE = "tests/fixtures/llama-tiny-vocab-bf16"
SPECS = ["q8_0", "q4_0", "q4_1", "q4_k_m"]
LANGS = ["eng_Latn", "hin_Deva", "zho_Hans"]
N = 8


def main():
    args = sys.argv[1:]
    work = llama_cpp_build.work_arg(args)
    shared, polyq = args[0], os.path.abspath(args[1])
    root = os.path.join(HERE, "..")
    exe = llama_cpp_build.compile_tool(work, "llama_sentence_nll")
    head, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in SPECS:
            gguf = os.path.join(tmp, spec + ".gguf")
            subprocess.run([polyq, "quantize", FIXTURE, "--quant", spec, "--out", gguf],
                           check=True, capture_output=True, cwd=root)
            with open(gguf, "rb") as f:
                head.append("# sha256 %s %s" % (spec, hashlib.sha256(f.read()).hexdigest()))
            for lang in LANGS:
                text = os.path.join(shared, "data/flores200/devtest/%s.devtest" % lang)
                res = subprocess.run([exe, gguf, text, str(N)], check=True, capture_output=True,
                                     text=True).stdout.split("\n")
                rows += ["%s %s %d %s" % (spec, lang, i + 1, r) for i, r in enumerate(res) if r]
    commit = llama_cpp_build.build(work)[1]
    dest = os.path.join(root, "tests", "golden", "llama_numerics_nll.txt")
    with open(dest, "w") as f:
        f.write("# %s written by polyq quantize as GGUF, scored as it is by llama.cpp %s (AVX2 "
                "build): spec lang line n_tokens nll_nats, each sentence after BOS\n"
                % (FIXTURE, commit))
        f.write("\n".join(head + rows) + "\n")
    print("wrote", dest, len(rows), "sentences")


if __name__ == "__main__":
    main()
