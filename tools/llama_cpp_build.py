"""Shared by the tools that turn llama.cpp's numbers into goldens: builds llama.cpp
(tools/build_llama_cpp.sh, outside the repository) and compiles one of tools/llama_*.c against
its static libraries. Nothing of llama.cpp is committed."""
import glob, os, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def work_arg(args):
    """The folder llama.cpp is built in: --work DIR, taken out of args, or the default cache."""
    work = os.path.expanduser("~/.cache/polyq/llama.cpp")
    if "--work" in args:
        i = args.index("--work")
        work = args[i + 1]
        del args[i:i + 2]
    return work


def build(work):
    """llama.cpp built in work; returns (bin folder, llama-cpp-python source folder name)."""
    out = subprocess.run([os.path.join(HERE, "build_llama_cpp.sh"), work], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return out, os.path.basename(glob.glob(os.path.join(work, "llama_cpp_python-*"))[0])


def compile_tool(work, name):
    """tools/NAME.c linked against llama.cpp's libraries; returns the executable's path."""
    bin_dir, _ = build(work)
    out = os.path.dirname(bin_dir)
    src = glob.glob(os.path.join(work, "llama_cpp_python-*", "vendor", "llama.cpp"))[0]
    libs = []
    for pat in ("src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a",
                "ggml/src/libggml-base.a"):
        libs += glob.glob(os.path.join(out, pat))
    exe = os.path.join(out, name)
    subprocess.run(["gcc", "-O2", "-std=gnu11", "-c", os.path.join(HERE, name + ".c"),
                    "-I", os.path.join(src, "include"), "-I", os.path.join(src, "ggml", "include"),
                    "-o", exe + ".o"], check=True)
    subprocess.run(["g++", exe + ".o"] + libs + libs + ["-fopenmp", "-lpthread", "-lm", "-o", exe],
                   check=True)
    return exe
