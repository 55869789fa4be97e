/* The polyq command line: argument parsing (one option table per command, cli/options.h),
 * progress, and the only place that prints for the user and chooses the exit status.
 * Everything else, the jobs included (run/run.h, run/sweep.h), is in libpolyq. */
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "hub/hub.h"
#include "model/model.h"
#include "report/compare.h"
#include "report/figures.h"
#include "report/report.h"
#include "run/provenance.h"
#include "run/run.h"
#include "run/sweep.h"

int die(const polyq_err *err)
{
    fprintf(stderr, "polyq: %s\n", err->msg);
    return err->code == POLYQ_INVALID_ARG ? 2 : 1;
}

int bad_arg(const char *fmt, const char *a)
{
    fprintf(stderr, "polyq: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n(run polyq --help for usage)\n");
    return 2;
}

static int check_out_folder(const char *opt, const char *path);

/* --out FILE.json of polyq eval, checked before anything is computed: a JSON name, in a folder
 * that exists and can be written. 0, or the exit status after a message. */
static int check_out_json(const char *path)
{
    if (!path)
        return 0;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && !strcasecmp(dot, ".csv"))
        return bad_arg("--out %s: polyq eval writes JSON; write results.json and run polyq "
                       "report results.json --out DIR for results.csv",
                       path);
    if (!dot || strcasecmp(dot, ".json"))
        return bad_arg("--out %s: polyq eval writes JSON, to a file named *.json", path);
    return check_out_folder("--out", path);
}

/* An output file's folder exists and can be written (checked before anything is computed). */
static int check_out_folder(const char *opt, const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "polyq: %s %s is a folder: name the file to write\n", opt, path);
        return 2;
    }
    size_t dl = (size_t)(base - path);
    while (dl > 1 && path[dl - 1] == '/') /* "dir/" names the folder dir */
        dl--;
    char *dir = base == path ? pq_strdup(".") : pq_asprintf("%.*s", (int)dl, path);
    int rc = 0;
    if (!dir)
        rc = bad_arg("%s", "out of memory");
    else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "polyq: %s: the folder %s does not exist\n", opt, dir);
        rc = 2;
    } else if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "polyq: %s: the folder %s cannot be written\n", opt, dir);
        rc = 2;
    }
    free(dir);
    return rc;
}

/* One line when a spec's linears were not all stored in its own formats. */
static void warn_fallbacks(const pq_model *q)
{
    char msg[512];
    if (q && pq_model_fallbacks(q, msg, sizeof msg))
        fprintf(stderr, "polyq: warning: %s\n", msg);
}

static unsigned long long n_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned long long)n : 1;
}

/* ---- progress and notes --------------------------------------------------------------------- */

typedef struct progress {
    bool on;
    double t0;
} progress;

static void on_progress(void *ctx, const char *lang, size_t li, size_t n_lang, size_t done,
                        size_t total, double frac)
{
    progress *p = ctx;
    if (!p->on)
        return;
    (void)done;
    (void)total;
    /* the time left from the share of the text done (languages weighed by their text) */
    double el = pq_now() - p->t0, eta = frac > 0 ? el / frac - el : 0;
    char bar[25];
    pq_progress_bar(bar, 24, frac);
    fprintf(stderr, "\r[%s] %3.0f%%  %-10s (%zu/%zu)  elapsed %.0fs  ETA %.0fs   ", bar, 100 * frac,
            lang, li + 1, n_lang, el, eta);
}

/* Off a terminal (a log file, a batch job) a line per language instead of the bar. */
static void on_lang_done(void *ctx, const char *lang, size_t li, size_t n_lang, size_t sentences,
                         uint64_t tokens, double seconds)
{
    progress *p = ctx;
    if (p->on)
        return;
    fprintf(stderr, "polyq: %s (%zu/%zu): %zu sentences, %llu tokens in %.1f s (%.0f tokens/s)\n",
            lang, li + 1, n_lang, sentences, (unsigned long long)tokens, seconds,
            seconds > 0 ? (double)tokens / seconds : 0.0);
}

static void on_note(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "polyq: %s\n", msg);
}

/* ---- shared option sets ------------------------------------------------------------------ */

#define CALIB_OPTS(co, n_samples, n_tokens)                                                        \
    {"--calib",                                                                                    \
     "L1,L2|all",                                                                                  \
     "calibration languages for calibrated specs (default eng_Latn), from\n"                       \
     "the FLORES-200 dev split, an equal share each; never the devtest text",                      \
     OPT_STR,                                                                                      \
     &(co).langs,                                                                                  \
     0,                                                                                            \
     0,                                                                                            \
     NULL,                                                                                         \
     NULL},                                                                                        \
        {"--calib-file",                                                                           \
         "FILE",                                                                                   \
         "calibration text from FILE instead (one sample per line)",                               \
         OPT_STR,                                                                                  \
         &(co).file,                                                                               \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         NULL},                                                                                    \
        {"--calib-samples",                                                                        \
         "N",                                                                                      \
         "calibration sentences in all (default 128)",                                             \
         OPT_COUNT,                                                                                \
         &(n_samples),                                                                             \
         1,                                                                                        \
         1000000,                                                                                  \
         "is not a positive count",                                                                \
         NULL},                                                                                    \
    {                                                                                              \
        "--calib-tokens", "T", "at most T tokens per sample (default: the model's context)",       \
            OPT_COUNT, &(n_tokens), 2, 1 << 20, "is not a count of at least 2", NULL               \
    }

static const char spec_help[] =
    "comma-separated specs (default int8,int4-g128): fp32 | int<2-8>\n"
    "[-g<group>|-tensor][-sym|-asym][-head], e.g. int4-g128-sym, int3-g64;\n"
    "gptq-int4-g128[-act], awq-int4-g128[-clip][-duo], smoothquant[-a<alpha>] (calibrated);\n"
    "w8a8, llm-int8[-t<threshold>]; the block formats (polyq eval --help lists them)";

/* ---- polyq tokenize ------------------------------------------------------------------------- */

static int cmd_tokenize(int argc, char **argv)
{
    bool pieces = false;
    const cli_opt opts[] = {
        {"--pieces", NULL, "print each token as id and piece (the vocabulary's string), one a line",
         OPT_FLAG, &pieces, 0, 0, NULL, NULL},
        {NULL}};
    const cli_cmd cmd = {
        "polyq tokenize MODEL [TEXT] [--pieces]",
        "the ids polyq eval scores for TEXT, or for each line of standard input read as "
        "the corpus\nreader reads a line (without its \\n or \\r\\n); the model's start "
        "token, which eval puts before\nevery sentence, is not shown",
        opts};
    const char *pos[2] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 2, &n_pos, &st))
        return st;
    if (n_pos < 1)
        return bad_arg("%s", "tokenize needs MODEL");
    polyq_err err = {0};
    pq_hub_opts ho = {.progress = isatty(2)};
    pq_model *m = NULL;
    char *path = NULL, *rev = NULL;
    int rc = pq_model_open_any(pos[0], &ho, &m, &path, &rev, &err);
    if (!rc && !m->tok)
        rc = pq_fail(&err, POLYQ_NOT_FOUND, "%s: no tokenizer files", path);
    char *line = NULL;
    size_t cap = 0;
    pq_tok_vocab vocab = {0};
    for (int i = 0; !rc; i++) {
        const char *text;
        size_t len;
        if (n_pos > 1) {
            if (i)
                break;
            text = pos[1];
            len = strlen(text);
        } else {
            ssize_t n = getline(&line, &cap, stdin);
            if (n < 0)
                break;
            if (n && line[n - 1] == '\n') /* as the corpus reader: \n or \r\n ends a line */
                line[--n] = 0;
            if (n && line[n - 1] == '\r')
                line[--n] = 0;
            text = line;
            len = (size_t)n;
        }
        pq_ids ids = {0};
        if ((rc = pq_tok_encode(m->tok, text, len, &ids, &err)) == 0 && !pieces) {
            for (size_t k = 0; k < ids.n; k++)
                printf("%s%d", k ? " " : "", ids.v[k]);
            printf("\n");
        }
        if (!rc && pieces && !vocab.tokens)
            rc = pq_tok_export(m->tok, &vocab, &err);
        for (size_t k = 0; !rc && pieces && k < ids.n; k++) { /* the piece as a JSON string */
            json_t *j = json_string(vocab.tokens[ids.v[k]]);
            char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
            printf("%d\t%s\n", ids.v[k], q ? q : "?");
            free(q);
            json_decref(j);
        }
        if (!rc && pieces)
            printf("\n");
        pq_ids_free(&ids);
    }
    pq_tok_vocab_free(&vocab);
    free(line);
    pq_model_free(m);
    free(path);
    free(rev);
    return rc ? die(&err) : 0;
}

/* ---- polyq eval --------------------------------------------------------------------------- */

static int cmd_eval(int argc, char **argv)
{
    const char *quant = "int8,int4-g128", *data = NULL, *out_path = NULL, *revision = NULL,
               *quantized = NULL, *log_path = NULL;
    unsigned long long max_sent = 0, threads = n_cpus(), batch = 512, n_boot = 1000, seed = 0,
                       stride = 0, context = 0;
    unsigned long long calib_samples = 128, calib_tokens = 0;
    bool offline = false, document = false, llama_ppl = false;
    double max_memory = 0;
    pq_calib_opts co = {.langs = "eng_Latn"};
    pq_run_opts ro = {.split = "devtest", .langs = "all", .ref = "eng_Latn"};
    const cli_opt opts[] = {
        {"--quant", "LIST", spec_help, OPT_STR, &quant, 0, 0, NULL, NULL},
        CALIB_OPTS(co, calib_samples, calib_tokens),
        {"--quantized", "DIRS",
         "also evaluate models written by polyq quantize from this MODEL\n"
         "(directories, or FILE.gguf: llama.cpp's GGUF of this MODEL)",
         OPT_STR, &quantized, 0, 0, NULL, NULL},
        {"--document", NULL,
         "score each data file as one document (WikiText-style: its lines and\n"
         "newlines tokenized as one text, each line a unit of the statistics)",
         OPT_FLAG, &document, 0, 0, NULL, NULL},
        {"--stride", "N",
         "document mode: a window of the model's context every N tokens,\n"
         "scoring only tokens no earlier window scored (default: half the context)",
         OPT_COUNT, &stride, 1, 1 << 20, "is not a positive count", &document},
        {"--llama-perplexity", NULL,
         "document mode scored as llama.cpp's llama-perplexity --ppl-stride N\n"
         "-c CONTEXT scores a file: windows of --context tokens every --stride,\n"
         "the last --stride of each scored, BOS only where the vocabulary adds it",
         OPT_FLAG, &llama_ppl, 0, 0, NULL, &document},
        {"--context", "N", "windows of at most N tokens (default: the model's, at most 4096)",
         OPT_COUNT, &context, 1, 1 << 20, "is not a positive count", NULL},
        {"--data", "SRC",
         "FLORES-200 folder (with dev/ devtest/) or lang=file[,lang=file...]\n"
         "(default: $POLYQ_DATA, else FLORES-200 in polyq's cache, downloaded once)",
         OPT_STR, &data, 0, 0, NULL, NULL},
        {"--langs", "L1,L2|all", "languages to evaluate (default all)", OPT_STR, &ro.langs, 0, 0,
         NULL, NULL},
        {"--split", "S", "devtest (default) or dev", OPT_STR, &ro.split, 0, 0, NULL, NULL},
        {"--ref", "LANG", "reference language for disparity (default eng_Latn)", OPT_STR, &ro.ref,
         0, 0, NULL, NULL},
        {"--max-sentences", "N", "first N sentences of each language (default all)", OPT_COUNT,
         &max_sent, 1, 100000000, "is not a positive count", NULL},
        {"--threads", "N", "worker threads (default: all cores); results do not depend on it",
         OPT_COUNT, &threads, 1, 1024, "is not a count in 1..1024", NULL},
        {"--batch-tokens", "N", "tokens per forward batch (default 512)", OPT_COUNT, &batch, 1,
         1 << 20, "is not a positive count", NULL},
        {"--bootstrap", "N", "bootstrap resamples for the intervals (default 1000)", OPT_COUNT,
         &n_boot, 100, 1000000, "must be at least 100", NULL},
        {"--seed", "N", "bootstrap seed (default 0)", OPT_COUNT, &seed, 0, ULLONG_MAX,
         "is not a non-negative integer", NULL},
        {"--revision", "REV", "hub branch, tag or commit (default main)", OPT_STR, &revision, 0, 0,
         NULL, NULL},
        {"--offline", NULL, "never use the network", OPT_FLAG, &offline, 0, 0, NULL, NULL},
        {"--max-memory", "SIZE",
         "refuse to start when the estimate exceeds SIZE (e.g. 8G; default:\n"
         "the memory available now)",
         OPT_SIZE, &max_memory, 0, 0, "is not a size such as 8G or 512M", NULL},
        {"--log-sentences", "FILE",
         "write every sentence's numbers as JSON Lines (language, line, tokens,\n"
         "bytes, NLL in full precision and per spec, KL, top-1 agreement)",
         OPT_STR, &log_path, 0, 0, NULL, NULL},
        {"--out", "FILE", "write all numbers and provenance as JSON", OPT_STR, &out_path, 0, 0,
         NULL, NULL},
        {NULL}};
    char about[1024], formats[512];
    pq_qfmt_list(formats, sizeof formats);
    snprintf(
        about, sizeof about,
        "per-language quantization degradation of MODEL (a folder, a GGUF file or a hub id such as "
        "gpt2)\n"
        "block formats: %s; q4_k_m (llama.cpp's mixture); nf4-dq, fp4-dq; each with optional "
        "-head;\n"
        "fp32, the ggml formats and q4_k_m also with -llamacpp: computed as llama.cpp's CPU "
        "backend "
        "does",
        formats);
    const cli_cmd cmd = {"polyq eval MODEL [options]", about, opts};
    const char *pos[1] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 1, &n_pos, &st))
        return st;
    const char *model_name = pos[0];
    if (!model_name)
        return bad_arg("%s", "eval needs a MODEL (a folder or a hub id such as gpt2)");
    if ((st = check_out_json(out_path)) ||
        (log_path && (st = check_out_folder("--log-sentences", log_path))))
        return st;
    if (!data && getenv("POLYQ_DATA") && *getenv("POLYQ_DATA"))
        data = getenv("POLYQ_DATA");
    co.samples = (size_t)calib_samples;
    co.max_tokens = (int)calib_tokens;

    polyq_err err = {0};
    double t0 = pq_now();
    /* quant specs first: a typo should not cost a model load */
    int n_q = 0;
    pq_qspec specs[PQ_MAX_SPECS];
    if (pq_qspec_parse_list(quant, specs, PQ_MAX_SPECS, &n_q, &err))
        return die(&err);

    pq_hub_opts ho = {.revision = revision, .offline = offline, .progress = isatty(2)};
    char *data_dir = NULL, *model_path = NULL, *model_rev = NULL, *cal_desc = NULL;
    pq_model *fp = NULL, *qm[PQ_MAX_SPECS] = {0};
    const char *q_src[PQ_MAX_SPECS] = {0};
    char *q_cal[PQ_MAX_SPECS] = {0}, *qc = NULL;
    int n_loaded = 0;
    pq_run_langs langs = {0};
    pq_calib_set cal = {0};
    pq_run *run = NULL;
    int rc;
    /* the model and the data are found (or fetched) first; both problems are told at once */
    {
        polyq_err derr = {0};
        rc = pq_model_locate(model_name, &ho, &model_path, &model_rev, &err);
        int drc = data ? 0 : pq_flores_resolve(&ho, &data_dir, &derr);
        if (rc && drc)
            fprintf(stderr, "polyq: %s\n", derr.msg);
        else if (drc) {
            err = derr;
            rc = drc;
        }
        if (rc)
            goto out;
    }
    progress pr = {.on = isatty(2)};
    ro.data = data ? data : data_dir;
    ro.max_sentences = (size_t)max_sent;
    ro.threads = (int)threads;
    ro.batch_tokens = (int)batch;
    ro.n_boot = (int)n_boot;
    ro.seed = seed;
    ro.document = document;
    ro.stride = (int)stride;
    ro.context = (int)context;
    ro.llama_ppl = llama_ppl;
    ro.note = on_note;
    ro.progress = on_progress;
    ro.lang_done = on_lang_done;
    ro.ctx = &pr;
    /* every language must exist, and the memory must suffice, before anything slow starts */
    pq_mem_plan plan;
    if ((rc = pq_run_langs_open(&langs, &ro, n_q > 0 || quantized, &err)) ||
        (rc = pq_memory_guard(model_name, model_path, specs, n_q, (int)batch,
                              document ? (context ? (int)context : -1) : 0, (int)threads,
                              max_memory, &plan, &err)))
        goto out;
    /* what is about to run, before the long part (the table comes at the end) */
    fprintf(stderr, "polyq: %s: %s%s%s on %zu language%s, %llu thread%s, about %.0f MB\n",
            model_name, n_q ? quant : "", n_q && quantized ? " and " : "",
            quantized ? quantized : "", langs.n, langs.n == 1 ? "" : "s", threads,
            threads == 1 ? "" : "s", plan.total / 1048576.0);
    if ((rc = pq_is_gguf_file(model_path) ? pq_model_open_gguf(&fp, model_path, &err)
                                          : pq_model_open_dir(&fp, model_path, &err)))
        goto out;
    if (fp->add_bos == 0 && !fp->cfg.encoder && !document) /* llama.cpp would add no BOS */
        fprintf(stderr,
                "polyq: %s says add_bos_token false; each sentence is still scored after the "
                "model's BOS (id %d), as lm-evaluation-harness scores after its prefix token "
                "(the results say so: model.scored_after)\n",
                model_name, pq_model_bos(fp));
    bool calibrated = false;
    for (int q = 0; q < n_q; q++)
        calibrated |= pq_qspec_calibrated(&specs[q]);
    if (calibrated) {
        co.eval_split = ro.split;
        co.data = ro.data;
        if ((rc = pq_calib_set_build(&cal, fp, &co, &err)))
            goto out;
        cal_desc = pq_strdup(cal.desc);
    }
    for (int q = 0; q < n_q && !rc; q++) {
        if (specs[q].gptq && pr.on)
            fprintf(stderr, "polyq: %s: quantizing block by block on %d calibration samples\n",
                    specs[q].name, cal.n_seq);
        rc = pq_quantize_spec(&qm[q], fp, &specs[q], &cal, (int)batch, (int)threads, &err);
        warn_fallbacks(rc ? NULL : qm[q]);
    }
    for (int q = 0; q < n_q; q++) /* per entry: its calibration set, and where it was read from */
        q_cal[q] = pq_qspec_calibrated(&specs[q]) && cal_desc ? pq_strdup(cal_desc) : NULL;
    char *qs = NULL;
    qc = quantized ? pq_strdup(quantized) : NULL; /* kept: q_src points into it */
    for (char *d = qc ? strtok_r(qc, ",", &qs) : NULL; d && !rc; d = strtok_r(NULL, ",", &qs)) {
        char *desc = NULL; /* models quantized earlier by polyq quantize */
        if (n_q == PQ_MAX_SPECS)
            rc = pq_fail(&err, POLYQ_INVALID_ARG, "at most %d quantized models at once",
                         PQ_MAX_SPECS);
        else if (!(rc = pq_quantized_load(&qm[n_q], fp, d, &desc, &err))) {
            q_src[n_q] = d;
            q_cal[n_q++] = desc;
            desc = NULL;
            n_loaded++;
        }
        free(desc);
    }
    if (quantized && !qc)
        rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
    if (rc)
        goto out;
    pr.t0 = pq_now();
    ro.argc = argc;
    ro.argv = argv;
    ro.extra_models = q_src + (n_q - n_loaded);
    ro.n_extra_models = n_loaded;
    ro.q_sources = q_src;
    ro.q_calibrations = (const char *const *)q_cal;
    rc = pq_run_eval(&run, fp, qm, n_q, &langs, &ro, model_name, model_path, model_rev, cal_desc,
                     t0, &err);
    if (pr.on)
        fprintf(stderr, "\n");
    if (rc)
        goto out;
    run->info.memory_estimate_mb = plan.total / 1048576.0;
    pq_report_table(stdout, &run->info, run->met, run->n_lang, run->summary);
    /* the sentences first: the results name them by path and SHA-256 (polyq compare) */
    char log_sha[65];
    if (log_path && ((rc = pq_run_write_sentences(run, log_path, &err)) ||
                     (rc = pq_sha256_file(log_path, log_sha, NULL, &err))))
        goto out;
    if (log_path) {
        fprintf(stderr, "polyq: wrote %s\n", log_path);
        run->info.sentences_file = log_path;
        run->info.sentences_sha256 = log_sha;
    }
    if (out_path &&
        (rc = pq_report_json(out_path, &run->info, run->met, run->n_lang, run->summary, &err)))
        goto out;
    fflush(stdout);
    if (out_path)
        fprintf(stderr, "polyq: wrote %s\n", out_path);
out:
    pq_run_free(run);
    for (int q = 0; q < n_q; q++) {
        pq_model_free(qm[q]);
        free(q_cal[q]);
    }
    free(qc);
    pq_model_free(fp);
    pq_run_langs_free(&langs);
    pq_calib_set_free(&cal);
    free(data_dir);
    free(model_path);
    free(model_rev);
    free(cal_desc);
    return rc ? die(&err) : 0;
}

/* ---- polyq quantize ------------------------------------------------------------------------- */

/* polyq quantize MODEL --quant SPEC --out DIR: one quantized model written for later
 * evaluations (polyq eval MODEL --quantized DIR). */
static int cmd_quantize(int argc, char **argv)
{
    const char *quant = NULL, *out_dir = NULL, *data = NULL, *revision = NULL;
    unsigned long long threads = n_cpus(), calib_samples = 128, calib_tokens = 0;
    bool offline = false;
    pq_calib_opts co = {.langs = "eng_Latn", .eval_split = "devtest"};
    const cli_opt opts[] = {
        {"--quant", "SPEC", "one spec, as for polyq eval --quant", OPT_STR, &quant, 0, 0, NULL,
         NULL},
        {"--out", "DIR|FILE.gguf", "polyq's folder (polyq-quant.safetensors), or llama.cpp's GGUF",
         OPT_STR, &out_dir, 0, 0, NULL, NULL},
        {"--data", "SRC", "FLORES-200 folder for the calibration text (default: polyq's cache)",
         OPT_STR, &data, 0, 0, NULL, NULL},
        CALIB_OPTS(co, calib_samples, calib_tokens),
        {"--threads", "N", "worker threads (default: all cores); results do not depend on it",
         OPT_COUNT, &threads, 1, 1024, "is not a count in 1..1024", NULL},
        {"--revision", "REV", "hub branch, tag or commit (default main)", OPT_STR, &revision, 0, 0,
         NULL, NULL},
        {"--offline", NULL, "never use the network", OPT_FLAG, &offline, 0, 0, NULL, NULL},
        {NULL}};
    const cli_cmd cmd = {
        "polyq quantize MODEL --quant SPEC --out DIR|FILE.gguf",
        "quantize once (calibration options as for eval), evaluate many times with --quantized",
        opts};
    const char *pos[1] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 1, &n_pos, &st))
        return st;
    const char *model_name = pos[0];
    if (!model_name || !quant || !out_dir)
        return bad_arg("%s", "quantize needs MODEL, --quant SPEC and --out DIR");
    co.samples = (size_t)calib_samples;
    co.max_tokens = (int)calib_tokens;
    polyq_err err = {0};
    pq_qspec spec;
    if (strchr(quant, ','))
        return bad_arg("--quant \"%s\": quantize writes one spec at a time", quant);
    if (pq_qspec_parse(quant, &spec, &err))
        return die(&err);
    size_t odl = strlen(out_dir);
    bool gguf = odl > 5 && !strcmp(out_dir + odl - 5, ".gguf");
    if (spec.none && !gguf) /* an F32 GGUF is a conversion */
        return bad_arg("%s",
                       "--quant fp32 has nothing to write (except as FILE.gguf: the model in F32)");

    pq_hub_opts ho = {.revision = revision, .offline = offline, .progress = isatty(2)};
    pq_model *fp = NULL, *q = NULL;
    char *path = NULL, *rev = NULL, *data_dir = NULL, *meta = NULL;
    pq_calib_set cal = {0};
    int rc = pq_model_open_any(model_name, &ho, &fp, &path, &rev, &err);
    bool calibrated = pq_qspec_calibrated(&spec);
    if (!rc && calibrated && !data && !co.file)
        rc = pq_flores_resolve(&ho, &data_dir, &err);
    if (!rc && calibrated) {
        co.data = data ? data : data_dir;
        rc = pq_calib_set_build(&cal, fp, &co, &err);
    }
    if (!rc) {
        rc = pq_quantize_spec(&q, fp, &spec, &cal, 512, (int)threads, &err);
        warn_fallbacks(rc ? NULL : q);
    }
    if (!rc) {
        json_t *m =
            json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:f, s:o}", "version", 1, "spec", spec.name,
                      "method", pq_qspec_method(&spec), "polyq", POLYQ_VERSION, "base_model",
                      model_name, "base_revision", rev ? json_string(rev) : json_null(),
                      "bits_per_weight", pq_model_bits_per_weight(q), "calibration",
                      cal.desc ? json_loads(cal.desc, 0, NULL) : json_null());
        meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        rc = !meta  ? pq_fail(&err, POLYQ_NOMEM, "out of memory")
             : gguf ? pq_gguf_write_model(out_dir, q, spec.name, &err)
                    : pq_qfile_write(out_dir, q, meta, &err);
    }
    if (!rc)
        printf("wrote %s%s: %s, %.3f bits/weight in the quantized layers\n", out_dir,
               gguf ? "" : "/polyq-quant.safetensors", spec.name, pq_model_bits_per_weight(q));
    pq_model_free(q);
    pq_model_free(fp);
    pq_calib_set_free(&cal);
    free(path);
    free(rev);
    free(data_dir);
    free(meta);
    return rc ? die(&err) : 0;
}

/* ---- polyq sweep -------------------------------------------------------------------------- */

static volatile sig_atomic_t cells_this_run;
static const char *sweep_db_name = "the database";

static void on_cell(void *ctx, const char *line)
{
    (void)ctx;
    cells_this_run++;
    fprintf(stderr, "%s\n", line);
}

/* SIGINT, SIGTERM: every cell already committed stays in the database; say so, and how to go
 * on (async-signal-safe: write(2) alone) */
static void on_stop(int sig)
{
    char msg[512], num[24];
    int n = 0, k = 0;
    unsigned long v = (unsigned long)cells_this_run;
    do
        num[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 20);
    const char *parts[] = {"\npolyq sweep: stopped by ",
                           sig == SIGINT ? "SIGINT" : "SIGTERM",
                           " after ",
                           NULL,
                           " cells this run; every finished cell is kept in ",
                           sweep_db_name,
                           ": the same command goes on with the rest\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i])
            while (k && n < (int)sizeof msg - 1)
                msg[n++] = num[--k];
        for (const char *c = parts[i]; c && *c && n < (int)sizeof msg - 1; c++)
            msg[n++] = *c;
    }
    ssize_t w = write(2, msg, (size_t)n);
    (void)w;
    _exit(128 + sig);
}

static int cmd_sweep(int argc, char **argv)
{
    pq_sweep_opts so = {.on_cell = on_cell};
    const cli_opt opts[] = {
        {"--db", "FILE", "the results database (default: PLAN with .db for .json)", OPT_STR,
         &so.db_path, 0, 0, NULL, NULL},
        {"--status", NULL, "say how many cells are done, per model, spec and calibration set",
         OPT_FLAG, &so.status, 0, 0, NULL, NULL},
        {"--data", "SRC",
         "FLORES-200 folder when the plan names no \"data\" (default: $POLYQ_DATA,\n"
         "else FLORES-200 in polyq's cache, downloaded once)",
         OPT_STR, &so.data, 0, 0, NULL, NULL},
        {"--offline", NULL, "never use the network", OPT_FLAG, &so.offline, 0, 0, NULL, NULL},
        {NULL}};
    const cli_cmd cmd = {
        "polyq sweep PLAN.json [--db FILE] [--status]",
        "models x specs x calibration x languages into SQLite; restarts redo only unfinished cells",
        opts};
    const char *pos[1] = {0};
    int st, n_pos;
    pq_sweep_mpi_init(&argc, &argv);
    bool done = cli_args(argc, argv, &cmd, pos, 1, &n_pos, &st);
    if (!done && !pos[0])
        st = bad_arg("%s", "usage: polyq sweep PLAN.json [--db FILE] [--status]"), done = true;
    if (done) {
        pq_sweep_mpi_finish();
        return st;
    }
    so.plan_path = pos[0];
    so.out = stdout;
    sweep_db_name = so.db_path ? so.db_path : "the plan's database";
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    polyq_err err = {0};
    int rc = pq_sweep_run(&so, &err);
    pq_sweep_mpi_finish();
    return rc ? die(&err) : 0;
}

/* ---- polyq report, info, models ------------------------------------------------------------- */

static int cmd_report(int argc, char **argv)
{
    const char *out = NULL;
    bool latex = false;
    const cli_opt opts[] = {
        {"--out", "DIR", "where results.csv, report.md, report.html and the figures go", OPT_STR,
         &out, 0, 0, NULL, NULL},
        {"--latex", NULL, "also DIR/tables.tex: report.md's tables as LaTeX (booktabs)", OPT_FLAG,
         &latex, 0, 0, NULL, NULL},
        {NULL}};
    const cli_cmd cmd = {"polyq report RESULTS.json|RESULTS.db --out DIR",
                         "results.csv (tidy), report.md, report.html and figures from a results "
                         "file or sweep database",
                         opts};
    const char *pos[1] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 1, &n_pos, &st))
        return st;
    if (!pos[0] || !out)
        return bad_arg("%s", "usage: polyq report RESULTS.json|RESULTS.db --out DIR");
    polyq_err err = {0};
    bool db = pq_is_sqlite(pos[0]);
    int rc =
        db ? pq_report_db(pos[0], out, latex, &err) : pq_report_export(pos[0], out, latex, &err);
    pq_figures_release();
    if (rc)
        return die(&err);
    printf(db ? "wrote results.json, results.csv, report.md, report.html%s and figures per model "
                "under %s\n"
              : "wrote%s %s/results.csv, report.md, report.html and figures (SVG and PNG)\n",
           latex ? (db ? ", tables.tex" : " tables.tex,") : "", out);
    return 0;
}

static int cmd_compare(int argc, char **argv)
{
    const char *entries = NULL, *model = NULL, *metric = NULL, *latex = NULL;
    unsigned long long n_boot = 0, seed = 0;
    bool seed_given = false;
    const cli_opt opts[] = {
        {"--entries", "A,B",
         "the entries compared (spec names as the results print them, e.g.\n"
         "gptq-int4-g128@hin_Deva,gptq-int4-g128@eng_Latn; one name: the same in both;\n"
         "default: each side's only entry)",
         OPT_STR, &entries, 0, 0, NULL, NULL},
        {"--metric", "M",
         "delta_bits_per_sentence (default), delta_bpb, delta_nll_per_token,\n"
         "rel_degradation, kld, kld_per_sentence or top1_agree",
         OPT_STR, &metric, 0, 0, NULL, NULL},
        {"--model", "ID", "the model of a sweep database that holds several", OPT_STR, &model, 0, 0,
         NULL, NULL},
        {"--bootstrap", "N", "bootstrap resamples (default: as the results file's run, else 1000)",
         OPT_COUNT, &n_boot, 100, 1000000, "must be at least 100", NULL},
        {"--seed", "N", "bootstrap seed (default: as the results file's run, else 0)", OPT_COUNT,
         &seed, 0, ULLONG_MAX, "is not a non-negative integer", &seed_given},
        {"--latex", "FILE", "also write the table as LaTeX (booktabs)", OPT_STR, &latex, 0, 0, NULL,
         NULL},
        {NULL}};
    const cli_cmd cmd = {
        "polyq compare A [B] [--entries A,B] [--metric M] [--latex FILE]",
        "one metric of two runs (or two entries of one) per language: B - A with a paired\n"
        "interval when both have the same sentences. A and B: results.json (with the\n"
        "--log-sentences file it names), a --log-sentences .jsonl, or a sweep database",
        opts};
    const char *pos[2] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 2, &n_pos, &st))
        return st;
    if (!pos[0])
        return bad_arg("%s", "usage: polyq compare A [B] [--entries A,B] [--metric M]");
    char *ea = NULL, *eb = NULL;
    if (entries) {
        const char *comma = strchr(entries, ',');
        ea = comma ? pq_asprintf("%.*s", (int)(comma - entries), entries) : pq_strdup(entries);
        eb = comma ? pq_strdup(comma + 1) : NULL;
        if (!ea || (comma && !eb) || !*ea || (eb && (!*eb || strchr(eb, ',')))) {
            free(ea);
            free(eb);
            return bad_arg("--entries: give one or two entry names, as A,B (got \"%s\")", entries);
        }
    }
    if (!pos[1] && !eb) {
        free(ea);
        free(eb);
        return bad_arg("%s", "one file: name the two entries to compare with --entries A,B");
    }
    pq_compare_opts co = {.a = pos[0],
                          .b = pos[1],
                          .entry_a = ea,
                          .entry_b = eb,
                          .model = model,
                          .metric = metric,
                          .n_boot = (int)n_boot,
                          .seed = seed,
                          .seed_given = seed_given,
                          .latex = latex};
    polyq_err err = {0};
    int rc = pq_compare(&co, stdout, &err);
    free(ea);
    free(eb);
    if (rc)
        return die(&err);
    if (latex)
        fprintf(stderr, "polyq: wrote %s\n", latex);
    return 0;
}

/* The reference models of the study, with their role. */
static const struct {
    const char *id, *family, *params, *role;
} reference_models[] = {
    {"openai-community/gpt2", "gpt2", "124M", "primary"},
    {"facebook/opt-125m", "opt", "125M", "validation"},
    {"EleutherAI/pythia-160m", "gpt_neox", "160M", "validation"},
    {"bigscience/bloom-560m", "bloom", "560M", "planned (multilingual)"},
    {"ai-forever/mGPT", "gpt2", "1.3B", "planned (multilingual)"},
    {"meta-llama/Llama-2-7b-hf", "llama", "7B", "planned (scale; gated)"},
    {"mistralai/Mistral-7B-v0.1", "mistral", "7B", "planned (scale)"},
    {"google-bert/bert-base-multilingual-cased", "bert", "178M", "encoder baseline (PLL)"},
    {"FacebookAI/xlm-roberta-base", "xlm-roberta", "278M", "encoder baseline (PLL)"},
    /* multilingual models quantized and deployed today */
    {"Qwen/Qwen2.5-0.5B", "qwen2", "0.49B", "multilingual (29 languages)"},
    {"Qwen/Qwen2.5-1.5B", "qwen2", "1.54B", "multilingual (29 languages)"},
    {"Qwen/Qwen2.5-7B", "qwen2", "7.61B", "multilingual (29 languages)"},
    {"Qwen/Qwen3-0.6B", "qwen3", "0.6B", "multilingual (119 languages)"},
    {"Qwen/Qwen3-1.7B", "qwen3", "1.7B", "multilingual (119 languages)"},
    {"Qwen/Qwen3-8B", "qwen3", "8.2B", "multilingual (119 languages)"},
    {"google/gemma-3-270m", "gemma3_text", "268M", "Gemma 3, text-only size"},
    {"google/gemma-3-1b-pt", "gemma3_text", "1.0B", "Gemma 3, text-only size"},
    {"google/gemma-3-4b-pt", "gemma3", "4.3B", "Gemma 3 (its text model; images not read)"},
    {"google/gemma-2-2b", "gemma2", "2.6B", "Gemma 2"},
    {"microsoft/Phi-3-mini-4k-instruct", "phi3", "3.8B", "Phi-3 (mostly English)"},
    {"CohereLabs/aya-expanse-8b", "cohere", "8.0B", "multilingual (23 languages)"},
    {"CohereLabs/c4ai-command-r7b-12-2024", "cohere2", "8.0B", "Cohere2 (23 languages)"},
};

static int cmd_langs(int argc, char **argv)
{
    const char *data = getenv("POLYQ_DATA") && *getenv("POLYQ_DATA") ? getenv("POLYQ_DATA") : NULL;
    const char *split = "devtest";
    bool offline = false;
    const cli_opt opts[] = {
        {"--data", "SRC",
         "FLORES-200 folder or lang=file[,lang=file...] (default: $POLYQ_DATA, else\n"
         "FLORES-200 in polyq's cache, downloaded once)",
         OPT_STR, &data, 0, 0, NULL, NULL},
        {"--split", "S", "devtest (default) or dev", OPT_STR, &split, 0, 0, NULL, NULL},
        {"--offline", NULL, "never use the network", OPT_FLAG, &offline, 0, 0, NULL, NULL},
        {NULL}};
    const cli_cmd cmd = {"polyq langs [--data SRC] [--split S]",
                         "the languages of the data: FLORES-200 code, language and script", opts};
    const char *pos[1];
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 0, &n_pos, &st))
        return st;
    polyq_err err = {0};
    pq_hub_opts ho = {.offline = offline, .progress = isatty(2)};
    char *data_dir = NULL, **langs = NULL;
    size_t n = 0;
    pq_dataset ds = {0};
    int rc = data ? 0 : pq_flores_resolve(&ho, &data_dir, &err);
    if (!rc)
        rc = pq_dataset_open(&ds, data ? data : data_dir, split, &err);
    if (!rc)
        rc = pq_dataset_langs(&ds, &langs, &n, &err);
    if (!rc) {
        printf("%-10s %-34s %s\n", "code", "language", "script");
        for (size_t i = 0; i < n; i++) {
            const char *script, *name = pq_lang_name(langs[i], &script);
            const char *nm = name ? name : "-";
            size_t w = pq_utf8_count(nm, strlen(nm)); /* pad by characters, not bytes */
            printf("%-10s %s%*s %s\n", langs[i], nm, w < 34 ? (int)(34 - w) : 0, "",
                   script ? script : "-");
        }
        printf("\n%zu languages\n", n);
    }
    pq_strlist_free(langs, n);
    pq_dataset_free(&ds);
    free(data_dir);
    return rc ? die(&err) : 0;
}

static int cmd_models(int argc, char **argv)
{
    const cli_cmd mcmd = {"polyq models",
                          "the reference models, whether each is cached, and the families polyq "
                          "reads",
                          NULL};
    const char *pos[1];
    int mst, n_pos;
    if (cli_args(argc, argv, &mcmd, pos, 0, &n_pos, &mst))
        return mst;
    char *cache = pq_hub_cache_dir();
    printf("%-42s %-12s %6s  %-28s %s\n", "hub id", "family", "params", "role", "cached");
    for (size_t i = 0; i < sizeof reference_models / sizeof reference_models[0]; i++)
        printf("%-42s %-12s %6s  %-28s %s\n", reference_models[i].id, reference_models[i].family,
               reference_models[i].params, reference_models[i].role,
               pq_hub_cached(reference_models[i].id, NULL) ? "yes" : "no");
    printf("\ncache: %s (polyq eval ID downloads a missing model there)\n", cache ? cache : "?");
    printf("\n%-12s %-8s %-6s %s\n", "family", "scoring", "GGUF",
           "what polyq reads as the family (config.json model_type)");
    for (int i = 0; pq_arch_at(i); i++) {
        const pq_arch *a = pq_arch_at(i);
        printf("%-12s %-8s %-6s %s\n", a->model_type, a->scoring == PQ_SCORE_PLL ? "PLL" : "causal",
               a->gguf ? a->gguf->arch : "-", a->description ? a->description : "");
    }
    free(cache);
    return 0;
}

/* Megabytes of the weights when the block linears take `bits` per weight. */
static double weights_mb(const pq_model *m, double linear_params, double bits)
{
    return ((double)m->n_params - linear_params) * 4 / 1e6 + linear_params * bits / 8 / 1e6;
}

static int cmd_info(int argc, char **argv)
{
    static const cli_opt opts[] = {{NULL}};
    const cli_cmd cmd = {"polyq info MODEL", "architecture, family, size, tokenizer, memory needed",
                         opts};
    const char *pos[1] = {0};
    int st, n_pos;
    if (cli_args(argc, argv, &cmd, pos, 1, &n_pos, &st))
        return st;
    if (!pos[0])
        return bad_arg("%s", "info needs MODEL");
    polyq_err err = {0};
    pq_hub_opts ho = {.progress = isatty(2)};
    pq_model *m = NULL, *q8 = NULL, *q4 = NULL;
    char *path = NULL, *rev = NULL;
    pq_qspec s8, s4;
    int rc = pq_model_open_any(pos[0], &ho, &m, &path, &rev, &err);
    if (!rc && !(rc = pq_qspec_parse("int8", &s8, &err)) &&
        !(rc = pq_qspec_parse("int4-g128", &s4, &err)) &&
        !(rc = pq_model_quantize(&q8, m, &s8, &err)))
        rc = pq_model_quantize(&q4, m, &s4, &err);
    if (!rc) {
        const pq_config *c = &m->cfg;
        printf("model          %s%s%s\n", pos[0], rev ? " @ " : "", rev ? rev : "");
        printf("folder         %s\n", path);
        printf("architecture   %s (model_type %s), weights stored as %s\n", c->architecture,
               c->model_type, m->dtype);
        printf("family         %s%s%s\n", m->arch->model_type, m->arch->description ? ": " : "",
               m->arch->description ? m->arch->description : "");
        printf("parameters     %.1f M (%.1f M in block linear layers)\n", m->n_params / 1e6,
               q8->linear_params / 1e6);
        printf("shape          %d layers, hidden %d, %d heads (%d key/value), MLP %d, vocabulary "
               "%d, context %d\n",
               c->n_layer, c->n_embd, c->n_head, c->n_kv_head ? c->n_kv_head : c->n_head,
               c->n_inner, c->n_vocab, c->n_ctx);
        if (m->tok)
            printf("tokenizer      %s, %d ids%s\n", pq_tok_kind(m->tok), pq_tok_vocab_size(m->tok),
                   c->encoder ? "; a masked LM: scored by pseudo-log-likelihood" : "");
        else
            printf("tokenizer      none (bare weights run on ids; evaluation needs one)\n");
        if (m->tok && !c->encoder)
            printf("               sequences start with id %d\n", pq_model_bos(m));
        bool pads, truncs;
        int64_t pad, trunc;
        if (m->tok && pq_tok_batching(m->tok, &pads, &pad, &truncs, &trunc)) {
            char what[160] = "";
            if (pads)
                snprintf(what, sizeof what, "padding%s%.0lld", pad > 0 ? " to " : "",
                         pad > 0 ? (long long)pad : 0LL);
            if (truncs)
                snprintf(what + strlen(what), sizeof what - strlen(what), "%struncation%s%.0lld",
                         pads ? " and " : "", trunc > 0 ? " at " : "",
                         trunc > 0 ? (long long)trunc : 0LL);
            printf("               tokenizer.json sets %s (transformers' batching);\n"
                   "               polyq applies neither: every sentence is scored whole, %s\n",
                   what,
                   c->encoder ? "one longer than the\n               context through a span of "
                                "it centred on each masked token"
                              : "one longer than the\n               context in rolling windows");
        }
        /* evaluation with the default batch: both models' logits, activations */
        int M = c->n_ctx > 512 ? c->n_ctx : 512;
        double act_mb = 2.0 * M * (double)c->n_vocab * 4 / 1e6 +
                        (double)M * (6.0 * c->n_embd + 2.0 * c->n_inner) * 4 / 1e6;
        printf(
            "memory (MB)    weights f32 %.0f, int8 %.0f, int4-g128 %.0f; evaluation buffers %.0f;\n"
            "               eval fp32 + int8 + int4-g128 together about %.0f\n",
            weights_mb(m, q8->linear_params, 32),
            weights_mb(m, q8->linear_params, pq_model_bits_per_weight(q8)),
            weights_mb(m, q4->linear_params, pq_model_bits_per_weight(q4)), act_mb,
            weights_mb(m, q8->linear_params, 32) + q8->linear_bits / 8e6 + q4->linear_bits / 8e6 +
                act_mb);
    }
    pq_model_free(q4);
    pq_model_free(q8);
    pq_model_free(m);
    free(path);
    free(rev);
    return rc ? die(&err) : 0;
}

static const struct {
    const char *name, *usage, *about;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"eval", "polyq eval MODEL [options]", "per-language quantization degradation", cmd_eval},
    {"quantize", "polyq quantize MODEL --quant SPEC --out DIR|FILE.gguf",
     "quantize once, evaluate many times with --quantized", cmd_quantize},
    {"report", "polyq report RESULTS.json|RESULTS.db --out DIR",
     "results.csv (tidy), report.md, figures", cmd_report},
    {"compare", "polyq compare A [B] [--entries A,B] [--metric M]",
     "two runs (or two entries) per language, B - A with a paired interval", cmd_compare},
    {"sweep", "polyq sweep PLAN.json [--db FILE] [--status]",
     "models x specs x calibration x languages into SQLite; restarts redo only unfinished cells",
     cmd_sweep},
    {"tokenize", "polyq tokenize MODEL [TEXT]", "token ids of TEXT (or of each stdin line)",
     cmd_tokenize},
    {"info", "polyq info MODEL", "architecture, size, tokenizer, memory needed", cmd_info},
    {"models", "polyq models",
     "the reference models, whether each is cached, and the families polyq reads", cmd_models},
    {"langs", "polyq langs [--data SRC]", "the languages of the data, with their names and scripts",
     cmd_langs},
};

static void usage(FILE *f)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "%s %s\n    %s\n", i ? "      " : "usage:", commands[i].usage,
                commands[i].about);
    fprintf(f, "       polyq --version\n\n"
               "MODEL is a Hugging Face model folder, a GGUF file or a hub id (gpt2, "
               "openai-community/gpt2);\n"
               "ids are looked up in the Hugging Face cache and downloaded when missing and the "
               "network allows.\n"
               "polyq COMMAND --help lists a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("polyq %s\n", POLYQ_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc, argv);
    return bad_arg("unknown command \"%s\"", argv[1]);
}
