#!/usr/bin/env python3
"""llama.cpp's strided perplexity of FLORES-200 documents, the golden of polyq's
`eval --document --llama-perplexity` (tests/golden/llama_ppl_devtest.txt): each GGUF written as
F32 by llama-quantize (the weights it holds, dequantized, which is what polyq computes with when
the file is the model), then `llama-perplexity -c 192 --ppl-stride 128` with an F32 KV cache and
no flash attention (llama-perplexity widens its window to -c + stride / 2, rounded up to a
multiple of 256: 256 tokens here, which the log's n_ctx confirms) on the first LINES lines of a
language (each with its newline). The rows:
'NAME LANG LINES CONTEXT STRIDE N_TOKENS PPL' with llama-perplexity's token count and its last
printed perplexity (4 decimals). llama.cpp is built by tools/build_llama_cpp.sh outside the
repository; only numbers are committed.

  tools/gen_llama_ppl_golden.py SHARED_DIR NAME=MODEL.gguf:LANG:LINES... [--work DIR]
"""
import os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402

CONTEXT, STRIDE = 256, 128


def main():
    args = sys.argv[1:]
    work = llama_cpp_build.work_arg(args)
    if len(args) < 2:
        sys.exit(__doc__)
    shared, runs = args[0], args[1:]
    bin_dir, commit = llama_cpp_build.build(work)
    rows = ["# llama-perplexity (%s) -c %d --ppl-stride %d -ctk f32 -ctv f32 -fa off on F32 "
            "copies of the GGUFs (a window of %d tokens); 'NAME LANG LINES CONTEXT STRIDE N_TOKENS "
            "PPL'\n" % (commit, CONTEXT - STRIDE // 2, STRIDE, CONTEXT)]
    with tempfile.TemporaryDirectory() as tmp:
        f32s = {}
        for run in runs:
            name, rest = run.split("=", 1)
            model, lang, n_lines = rest.rsplit(":", 2)
            if model not in f32s:
                f32s[model] = os.path.join(tmp, "%s-f32.gguf" % name)
                subprocess.run([os.path.join(bin_dir, "llama-quantize"), "--allow-requantize",
                                model, f32s[model], "F32"], check=True, capture_output=True)
            with open(os.path.join(shared, "data/flores200/devtest/%s.devtest" % lang), "rb") as f:
                lines = f.read().split(b"\n")[:int(n_lines)]
            doc = os.path.join(tmp, "doc.txt")
            with open(doc, "wb") as f:
                f.write(b"\n".join(lines) + b"\n")
            res = subprocess.run([os.path.join(bin_dir, "llama-perplexity"), "-m", f32s[model],
                                  "-f", doc, "-c", str(CONTEXT - STRIDE // 2), "--ppl-stride",
                                  str(STRIDE),
                                  "-b", str(CONTEXT), "-t", "2", "-ctk", "f32", "-ctv", "f32",
                                  "-fa", "off"], check=True, capture_output=True, text=True)
            text = res.stdout + res.stderr
            n_tok = int(re.search(r"have (\d+) tokens", text).group(1))
            window = int(re.search(r"computing over \d+ chunks, n_ctx=(\d+)", text).group(1))
            assert window == CONTEXT, "llama-perplexity's window is %d, not %d" % (window, CONTEXT)
            ppl = re.findall(r"\[\d+\]([0-9.]+),", text)[-1]
            rows.append("%s %s %s %d %d %d %s\n" % (name, lang, n_lines, CONTEXT, STRIDE, n_tok, ppl))
            print(rows[-1], end="")
    dest = os.path.join(HERE, "..", "tests", "golden", "llama_ppl_devtest.txt")
    with open(dest, "w") as f:
        f.writelines(rows)
    print("wrote", dest)


if __name__ == "__main__":
    main()
