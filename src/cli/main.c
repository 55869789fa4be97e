/* The polyq command line: argument parsing, progress, and the only place that prints for
 * the user and chooses the exit status. Everything else is in libpolyq. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"
#include "eval/eval.h"
#include "eval/memory.h"
#include "eval/metrics.h"
#include <sys/resource.h>
#include "hub/hub.h"
#include "model/model.h"
#include "report/figures.h"
#include "report/report.h"

static const char usage[] =
    "usage: polyq eval MODEL [options]     per-language quantization degradation\n"
    "       polyq quantize MODEL --quant SPEC --out DIR|FILE.gguf   quantize once (calibration options\n"
    "                                      as for eval), evaluate many times with --quantized\n"
    "       polyq report RESULTS.json|RESULTS.db --out DIR   results.csv (tidy) and report.md\n"
    "       polyq sweep PLAN.json [--db FILE] [--status]   models x specs x calibration x languages\n"
    "                                      into SQLite; restarts redo only unfinished cells\n"
    "       polyq tokenize MODEL [TEXT]    token ids of TEXT (or of each stdin line)\n"
    "       polyq info MODEL               architecture, size, tokenizer, memory needed\n"
    "       polyq models                   the reference models and whether each is cached\n"
    "       polyq --version\n"
    "\n"
    "MODEL is a Hugging Face model folder or hub id (gpt2, openai-community/gpt2); ids are\n"
    "looked up in the Hugging Face cache and downloaded when missing and the network allows.\n"
    "\n"
    "eval options:\n"
    "  --quant LIST        comma-separated specs (default int8,int4-g128): fp32 | int<2-8>\n"
    "                      [-g<group>|-tensor][-sym|-asym][-head], e.g. int4-g128-sym, int3-g64;\n"
    "                      gptq-int4-g128[-act] (calibrated); q8_0 q4_0 q4_1 q5_0 q5_1; nf4 fp4\n"
    "  --calib L1,L2|all   calibration languages for calibrated specs (default eng_Latn), from\n"
    "                      the FLORES-200 dev split, an equal share each; never the devtest text\n"
    "  --calib-file FILE   calibration text from FILE instead (one sample per line)\n"
    "  --calib-samples N   calibration sentences in all (default 128)\n"
    "  --calib-tokens T    at most T tokens per sample (default: the model's context)\n"
    "  --quantized DIRS    also evaluate models written by polyq quantize from this MODEL\n"
    "                      (directories, or FILE.gguf: llama.cpp's GGUF of this MODEL)\n"
    "  --document          score each data file as one document (WikiText-style: lines and\n"
    "                      their newlines as one stream, each line a unit of the statistics)\n"
    "  --stride N          document mode: a window of the model's context every N tokens,\n"
    "                      scoring only tokens no earlier window scored (default: half the context)\n"
    "  --data SRC          FLORES-200 folder (with dev/ devtest/) or lang=file[,lang=file...]\n"
    "                      (default: FLORES-200 in polyq's cache, downloaded once)\n"
    "  --langs L1,L2|all   languages to evaluate (default all)\n"
    "  --split S           devtest (default) or dev\n"
    "  --ref LANG          reference language for disparity (default eng_Latn)\n"
    "  --max-sentences N   first N sentences of each language (default all)\n"
    "  --threads N         worker threads (default: all cores); results do not depend on it\n"
    "  --batch-tokens N    tokens per forward batch (default 512)\n"
    "  --bootstrap N       bootstrap resamples for the intervals (default 1000)\n"
    "  --seed N            bootstrap seed (default 0)\n"
    "  --revision REV      hub branch, tag or commit (default main)\n"
    "  --offline           never use the network\n"
    "  --max-memory SIZE   refuse to start when the estimate exceeds SIZE (e.g. 8G; default:\n"
    "                      the memory available now)\n"
    "  --out FILE          write all numbers and provenance as JSON\n";

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

/* If argv[*i] is one of value_opts, *v = the next argument (and *i moves to it); -1 when
 * there is none. */
static int option_value(int argc, char **argv, int *i, const char *const *value_opts, const char **v)
{
    for (int k = 0; value_opts[k]; k++)
        if (!strcmp(argv[*i], value_opts[k])) {
            if (*i + 1 >= argc)
                return -1;
            *v = argv[++*i];
            return 0;
        }
    return 0;
}

bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

typedef struct progress {
    bool on;
    const char *lang;
    size_t li, n_lang;
    double t0;
} progress;

static void on_progress(void *ctx, size_t done, size_t total)
{
    progress *p = ctx;
    if (!p->on)
        return;
    double el = pq_now() - p->t0, frac = (p->li + (double)done / (double)total) / (double)p->n_lang;
    double eta = frac > 0 ? el / frac - el : 0;
    char bar[25];
    pq_progress_bar(bar, 24, frac);
    fprintf(stderr, "\r[%s] %3.0f%%  %-10s (%zu/%zu)  elapsed %.0fs  ETA %.0fs   ", bar, 100 * frac,
            p->lang, p->li + 1, p->n_lang, el, eta);
}

/* Finds MODEL as a folder or a hub id (downloading it if needed). *path and *rev are heap
 * strings. */
/* a GGUF file given as the model (its first four bytes) */
static bool is_gguf(const char *path)
{
    char head[4] = {0};
    FILE *f = pq_file_exists(path) ? fopen(path, "rb") : NULL;
    bool yes = f && fread(head, 1, 4, f) == 4 && !memcmp(head, "GGUF", 4);
    if (f)
        fclose(f);
    return yes;
}

int find_model(const char *name, const pq_hub_opts *ho, char **path, char **rev, polyq_err *err)
{
    *rev = NULL;
    if (pq_dir_exists(name) || is_gguf(name))
        return (*path = pq_strdup(name)) ? 0 : pq_fail(err, POLYQ_NOMEM, "out of memory");
    return pq_hub_resolve(name, ho, path, rev, err);
}

int open_model(const char *name, const pq_hub_opts *ho, pq_model **m, char **path, char **rev,
               polyq_err *err)
{
    int rc = find_model(name, ho, path, rev, err);
    return rc ? rc : is_gguf(*path) ? pq_model_open_gguf(m, *path, err) : pq_model_open_dir(m, *path, err);
}

static int cmd_tokenize(int argc, char **argv)
{
    if (argc < 3)
        return bad_arg("%s", "tokenize needs MODEL");
    polyq_err err = {0};
    pq_hub_opts ho = {.progress = isatty(2)};
    pq_model *m = NULL;
    char *path = NULL, *rev = NULL;
    int rc = open_model(argv[2], &ho, &m, &path, &rev, &err);
    if (!rc && !m->tok)
        rc = pq_fail(&err, POLYQ_NOT_FOUND, "%s: no tokenizer files", path);
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; !rc; i++) {
        const char *text;
        size_t len;
        if (argc > 3) {
            if (i)
                break;
            text = argv[3];
            len = strlen(text);
        } else {
            ssize_t n = getline(&line, &cap, stdin);
            if (n < 0)
                break;
            if (n && line[n - 1] == '\n')
                line[--n] = 0;
            text = line;
            len = (size_t)n;
        }
        pq_ids ids = {0};
        if ((rc = pq_tok_encode(m->tok, text, len, &ids, &err)) == 0) {
            for (size_t k = 0; k < ids.n; k++)
                printf("%s%d", k ? " " : "", ids.v[k]);
            printf("\n");
        }
        pq_ids_free(&ids);
    }
    free(line);
    pq_model_free(m);
    free(path);
    free(rev);
    return rc ? die(&err) : 0;
}

/* The calibration options of eval and quantize: 1 if a is one (its value taken), 0 if not,
 * -1 (message printed) if its value is bad. */
static int calib_arg(const char *a, const char *v, calib_opts *co)
{
    unsigned long long n = 0;
    if (!strcmp(a, "--calib"))
        co->langs = v;
    else if (!strcmp(a, "--calib-file"))
        co->file = v;
    else if (!strcmp(a, "--calib-samples")) {
        if (!parse_uint(v, 1000000, &n) || !n)
            return bad_arg("--calib-samples \"%s\" is not a positive count", v), -1;
        co->samples = (size_t)n;
    } else if (!strcmp(a, "--calib-tokens")) {
        if (!parse_uint(v, 1 << 20, &n) || n < 2)
            return bad_arg("--calib-tokens \"%s\" is not a count of at least 2", v), -1;
        co->max_tokens = (int)n;
    } else {
        return 0;
    }
    return 1;
}

/* Calibration samples for calibrated specs: the first sentences of each language's FLORES-200
 * dev file (an equal share of the samples), or the lines of --calib-file; each tokenized with
 * the model's start token (an encoder's special tokens around it) and cut to the context.
 * *desc (heap) is a JSON object describing them for the results. */
int build_calib(const pq_model *m, const calib_opts *o, pq_ids *store, int **starts, int *n_seq,
                char **desc, polyq_err *err)
{
    char **langs = NULL, *lc = NULL, *sv = NULL;
    size_t n_lang = 0;
    int rc = 0;
    pq_dataset ds = {0};
    if (!m->tok)
        return pq_fail(err, POLYQ_NOT_FOUND, "%s: no tokenizer files: cannot read calibration text", m->dir);
    if (!o->file) {
        if (!strcmp(o->eval_split, "dev"))
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "calibration text comes from the dev split, which is being evaluated (--split dev): "
                           "evaluate devtest or give --calib-file");
        if ((rc = pq_dataset_open(&ds, o->data, "dev", err)))
            return rc;
        if (!ds.root) {
            pq_dataset_free(&ds);
            return pq_fail(err, POLYQ_INVALID_ARG,
                           "calibrated specs need calibration text: --data lang=file pairs have no dev split; "
                           "give --calib-file");
        }
        if (!strcmp(o->langs, "all")) {
            rc = pq_dataset_langs(&ds, &langs, &n_lang, err);
        } else {
            lc = pq_strdup(o->langs);
            for (char *s = lc ? strtok_r(lc, ",", &sv) : NULL; s && !rc; s = strtok_r(NULL, ",", &sv)) {
                char **nl = realloc(langs, (n_lang + 1) * sizeof *nl);
                if (!nl || !(nl[n_lang] = pq_strdup(s)))
                    rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
                if (nl)
                    langs = nl;
                if (!rc)
                    n_lang++;
            }
            if (!rc && !n_lang)
                rc = pq_fail(err, POLYQ_INVALID_ARG, "--calib names no language");
        }
    } else {
        langs = calloc(1, sizeof *langs);
        if (!langs || !(langs[0] = pq_strdup("file")))
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
        else
            n_lang = 1;
    }
    const int32_t *pre = NULL, *post = NULL;
    int n_pre = 0, n_post = 0;
    pq_tok_special_around(m->tok, &pre, &n_pre, &post, &n_post);
    int32_t bos = pq_model_bos(m);
    int cap = o->max_tokens > 0 && o->max_tokens < m->cfg.n_ctx ? o->max_tokens : m->cfg.n_ctx;
    size_t per = n_lang ? (o->samples + n_lang - 1) / n_lang : 0, total_tok = 0;
    *starts = calloc(per * n_lang + 1, sizeof **starts);
    *n_seq = 0;
    if (!rc && !*starts)
        rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    for (size_t l = 0; l < n_lang && !rc; l++) {
        char *path = NULL;
        pq_corpus c = {0};
        if (o->file)
            path = pq_strdup(o->file);
        else if ((rc = pq_dataset_path(&ds, langs[l], &path, err))) {
            pq_fail_context(err, "--calib");
            break;
        }
        rc = pq_corpus_load(&c, langs[l], path, per, err);
        free(path);
        for (size_t s = 0; s < c.n && !rc && (size_t)*n_seq < per * n_lang; s++) {
            size_t at = store->n;
            if (m->cfg.encoder)
                for (int k = 0; k < n_pre && !rc; k++)
                    rc = pq_ids_push(store, pre[k]) ? pq_fail(err, POLYQ_NOMEM, "out of memory") : 0;
            else if (pq_ids_push(store, bos))
                rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
            if (!rc && (rc = pq_tok_encode(m->tok, c.lines[s], c.lens[s], store, err)))
                pq_fail_context(err, "calibration text %s, line %zu", langs[l], s + 1);
            for (int k = 0; m->cfg.encoder && k < n_post && !rc; k++)
                rc = pq_ids_push(store, post[k]) ? pq_fail(err, POLYQ_NOMEM, "out of memory") : 0;
            if (rc)
                break;
            for (size_t i = at; i < store->n; i++)
                if (store->v[i] < 0 || store->v[i] >= m->cfg.n_vocab)
                    rc = pq_fail(err, POLYQ_FORMAT, "calibration text gives token id %d beyond the model's %d",
                                 store->v[i], m->cfg.n_vocab);
            if (store->n - at > (size_t)cap)
                store->n = at + (size_t)cap;
            total_tok += store->n - at;
            (*starts)[++*n_seq] = (int)store->n;
        }
        pq_corpus_free(&c);
    }
    if (!rc && !*n_seq)
        rc = pq_fail(err, POLYQ_INVALID_ARG, "the calibration text is empty");
    if (!rc) {
        json_t *j = json_pack("{s:s, s:[], s:i, s:I, s:i}", "source",
                              o->file ? o->file : "flores200 dev", "languages", "samples", *n_seq,
                              "tokens", (json_int_t)total_tok, "max_tokens_per_sample", cap);
        for (size_t l = 0; j && l < n_lang && !o->file; l++)
            json_array_append_new(json_object_get(j, "languages"), json_string(langs[l]));
        *desc = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!*desc)
            rc = pq_fail(err, POLYQ_NOMEM, "out of memory");
    }
    pq_strlist_free(langs, n_lang);
    free(lc);
    pq_dataset_free(&ds);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    const char *model_name = NULL, *quant = "int8,int4-g128", *data = NULL, *langs_arg = "all",
               *split = "devtest", *ref = "eng_Latn", *out_path = NULL, *revision = NULL;
    unsigned long long max_sent = 0, threads = 0, batch = 512, n_boot = 1000, seed = 0;
    bool offline = false;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    threads = ncpu > 0 ? (unsigned long long)ncpu : 1;
    static const char *const value_opts[] = {"--quant", "--data", "--langs", "--split", "--ref",
                                             "--out", "--revision", "--max-sentences", "--threads",
                                             "--batch-tokens", "--bootstrap", "--seed",
                                             "--max-memory", "--calib", "--calib-file",
                                             "--calib-samples", "--calib-tokens", "--quantized", "--stride",
                                             NULL};
    bool document = false;
    unsigned long long stride = 0;
    const char *quantized = NULL;
    calib_opts co = {.langs = "eng_Latn", .samples = 128};
    int ca;
    double max_memory = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (option_value(argc, argv, &i, value_opts, &v))
            return bad_arg("%s needs a value", a);
        if (!strcmp(a, "--offline"))
            offline = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return fputs(usage, stdout), 0;
        else if (!strcmp(a, "--quant"))
            quant = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--langs"))
            langs_arg = v;
        else if (!strcmp(a, "--split"))
            split = v;
        else if (!strcmp(a, "--ref"))
            ref = v;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else if (!strcmp(a, "--revision"))
            revision = v;
        else if (!strcmp(a, "--quantized"))
            quantized = v;
        else if (!strcmp(a, "--document"))
            document = true;
        else if (!strcmp(a, "--stride")) {
            if (!parse_uint(v, 1 << 20, &stride) || !stride)
                return bad_arg("--stride \"%s\" is not a positive count", v);
            document = true;
        }
        else if ((ca = calib_arg(a, v, &co)) != 0) {
            if (ca < 0)
                return 2;
        }
        else if (!strcmp(a, "--max-sentences")) {
            if (!parse_uint(v, 100000000, &max_sent) || !max_sent)
                return bad_arg("--max-sentences \"%s\" is not a positive count", v);
        } else if (!strcmp(a, "--threads")) {
            if (!parse_uint(v, 1024, &threads) || !threads)
                return bad_arg("--threads \"%s\" is not a count in 1..1024", v);
        } else if (!strcmp(a, "--batch-tokens")) {
            if (!parse_uint(v, 1 << 20, &batch) || !batch)
                return bad_arg("--batch-tokens \"%s\" is not a positive count", v);
        } else if (!strcmp(a, "--bootstrap")) {
            if (!parse_uint(v, 1000000, &n_boot) || n_boot < 100)
                return bad_arg("--bootstrap \"%s\" must be at least 100", v);
        } else if (!strcmp(a, "--max-memory")) {
            if ((max_memory = pq_parse_size(v)) <= 0)
                return bad_arg("--max-memory \"%s\" is not a size such as 8G or 512M", v);
        } else if (!strcmp(a, "--seed")) {
            if (!parse_uint(v, ULLONG_MAX, &seed))
                return bad_arg("--seed \"%s\" is not a non-negative integer", v);
        } else if (a[0] == '-')
            return bad_arg("unknown option %s", a);
        else if (!model_name)
            model_name = a;
        else
            return bad_arg("unexpected argument \"%s\"", a);
    }
    if (!model_name)
        return bad_arg("%s", "eval needs a MODEL (a folder or a hub id such as gpt2)");

    polyq_err err = {0};
    int rc = 0;
    double t0 = pq_now();
    /* quant specs first: a typo should not cost a model load */
    int n_q = 0;
    pq_qspec specs[32];
    char *qcopy = pq_strdup(quant), *save = NULL;
    for (char *s = strtok_r(qcopy, ",", &save); s && !rc; s = strtok_r(NULL, ",", &save)) {
        if (n_q == 32)
            rc = pq_fail(&err, POLYQ_INVALID_ARG, "--quant: at most 32 specs");
        else
            rc = pq_qspec_parse(s, &specs[n_q++], &err);
    }
    free(qcopy);
    if (rc)
        return die(&err);

    pq_hub_opts ho = {.revision = revision, .offline = offline, .progress = isatty(2)};
    pq_dataset ds = {0};
    char *data_dir = NULL, **langs = NULL, *model_path = NULL, *model_rev = NULL;
    size_t n_lang = 0;
    pq_model *fp = NULL, *qm[32] = {0};
    pq_evaluator *ev = NULL;
    pq_lang_eval *res = NULL;
    pq_lang_metrics *met = NULL;
    pq_disparity_summary summary[32];
    int ref_idx = -1;
    pq_ids cal_store = {0};
    int *cal_starts = NULL, cal_n = 0;
    char *cal_desc = NULL;
    bool pr_tty = isatty(2);

    /* the model and the data are found (or fetched) first; both problems are told at once */
    {
        polyq_err derr = {0};
        rc = find_model(model_name, &ho, &model_path, &model_rev, &err);
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
    if ((rc = pq_dataset_open(&ds, data ? data : data_dir, split, &err)))
        goto out;
    if (!strcmp(langs_arg, "all")) {
        if ((rc = pq_dataset_langs(&ds, &langs, &n_lang, &err)))
            goto out;
    } else {
        char *lc = pq_strdup(langs_arg), *sv = NULL;
        for (char *s = strtok_r(lc, ",", &sv); s; s = strtok_r(NULL, ",", &sv)) {
            char **nl = realloc(langs, (n_lang + 1) * sizeof *nl);
            if (!nl || !(nl[n_lang] = pq_strdup(s))) {
                langs = nl ? nl : langs;
                rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
                break;
            }
            langs = nl;
            n_lang++;
        }
        free(lc);
        if (rc)
            goto out;
        if (!n_lang) {
            rc = pq_fail(&err, POLYQ_INVALID_ARG, "--langs names no language");
            goto out;
        }
    }
    /* every language must exist before anything slow starts */
    for (size_t l = 0; l < n_lang; l++) {
        char *p = NULL;
        if ((rc = pq_dataset_path(&ds, langs[l], &p, &err)))
            goto out;
        free(p);
        if (!strcmp(langs[l], ref))
            ref_idx = (int)l;
    }
    if (ref_idx < 0 && n_q) {
        char *p = NULL;
        polyq_err e2 = {0};
        if (pq_dataset_path(&ds, ref, &p, &e2) == 0) { /* evaluate the reference too */
            char **nl = realloc(langs, (n_lang + 1) * sizeof *nl);
            if (!nl) {
                free(p);
                rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
                goto out;
            }
            langs = nl;
            memmove(langs + 1, langs, n_lang * sizeof *langs);
            langs[0] = pq_strdup(ref);
            n_lang++;
            ref_idx = 0;
            fprintf(stderr, "polyq: adding the reference language %s for disparity\n", ref);
        } else {
            fprintf(stderr, "polyq: reference language %s is not in the data: disparity ratios "
                            "are not computed (choose one with --ref)\n", ref);
        }
        free(p);
    }
    /* the memory guard: estimate first, load only what fits */
    bool gguf = is_gguf(model_path);
    pq_mem_plan plan = {0}; /* (a GGUF alone is not estimated: its weights are held as f32) */
    if (!gguf && (rc = pq_memory_estimate(model_path, specs, n_q, (int)batch, (int)threads, &plan, &err)))
        goto out;
    double limit = max_memory > 0 ? max_memory : pq_memory_available();
    if (limit > 0 && plan.total > limit) {
        rc = pq_fail(&err, POLYQ_NOMEM,
                     "%s: evaluation needs about %.2f GB (weights %.2f, quantized copies %.2f, batch "
                     "buffers %.2f) but %s allows %.2f GB; use a smaller --batch-tokens, fewer --quant "
                     "specs at once, or a machine with more memory",
                     model_name, plan.total / 1e9, plan.weights_fp / 1e9, plan.weights_q / 1e9,
                     plan.buffers / 1e9, max_memory > 0 ? "--max-memory" : "the memory available now",
                     limit / 1e9);
        goto out;
    }
    if ((rc = gguf ? pq_model_open_gguf(&fp, model_path, &err) : pq_model_open_dir(&fp, model_path, &err)))
        goto out;
    bool any_gptq = false;
    for (int q = 0; q < n_q; q++)
        any_gptq |= specs[q].gptq || specs[q].awq || specs[q].smooth;
    if (any_gptq) {
        co.eval_split = split;
        co.data = data ? data : data_dir;
        if ((rc = build_calib(fp, &co, &cal_store, &cal_starts, &cal_n, &cal_desc, &err)))
            goto out;
    }
    for (int q = 0; q < n_q; q++) {
        if (specs[q].gptq) {
            pq_calib cal = {cal_store.v, cal_starts, cal_n, (int)batch};
            if (pr_tty)
                fprintf(stderr, "polyq: %s: quantizing block by block on %d calibration samples\n",
                        specs[q].name, cal_n);
            rc = pq_model_gptq(&qm[q], fp, &specs[q], &cal, (int)threads, &err);
        } else if (specs[q].awq) {
            pq_calib cal = {cal_store.v, cal_starts, cal_n, (int)batch};
            rc = pq_model_awq(&qm[q], fp, &specs[q], &cal, (int)threads, &err);
        } else if (specs[q].smooth) {
            pq_calib cal = {cal_store.v, cal_starts, cal_n, (int)batch};
            pq_smooth_opts so = {specs[q].alpha, true, true, true};
            rc = pq_model_smoothquant(&qm[q], fp, &specs[q], &so, &cal, (int)threads, &err);
        } else {
            rc = pq_model_quantize(&qm[q], fp, &specs[q], &err);
        }
        if (rc)
            goto out;
    }
    if (quantized) { /* models quantized earlier by polyq quantize */
        char *qc = pq_strdup(quantized), *qs = NULL;
        for (char *d = qc ? strtok_r(qc, ",", &qs) : NULL; d && !rc; d = strtok_r(NULL, ",", &qs)) {
            char *meta = NULL;
            if (n_q == 32) {
                rc = pq_fail(&err, POLYQ_INVALID_ARG, "at most 32 quantized models at once");
                break;
            }
            size_t dl = strlen(d);
            if (dl > 5 && !strcmp(d + dl - 5, ".gguf")) { /* llama.cpp's file */
                char *sn = NULL;
                if ((rc = pq_gguf_load_quantized(&qm[n_q], fp, d, &sn, &err)))
                    break;
                free(sn);
                specs[n_q] = qm[n_q]->spec;
                n_q++;
                continue;
            }
            if ((rc = pq_qfile_load(&qm[n_q], fp, d, &meta, &err)))
                break;
            specs[n_q] = qm[n_q]->spec;
            json_t *mj = json_loads(meta, 0, NULL), *cj = json_object_get(mj, "calibration");
            if (json_is_object(cj) && !cal_desc)
                cal_desc = json_dumps(cj, JSON_COMPACT);
            json_decref(mj);
            free(meta);
            n_q++;
        }
        if (!qc)
            rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
        free(qc);
        if (rc)
            goto out;
    }
    progress pr = {.on = isatty(2), .n_lang = n_lang, .t0 = pq_now()};
    if (document && !stride)
        stride = (unsigned long long)(fp->cfg.n_ctx / 2 > 0 ? fp->cfg.n_ctx / 2 : 1);
    pq_eval_opts eo = {.n_threads = (int)threads, .batch_tokens = (int)batch,
                       .progress = on_progress, .progress_ctx = &pr, .stride = (int)stride};
    if ((rc = pq_evaluator_create(&ev, fp, qm, n_q, &eo, &err)))
        goto out;
    res = calloc(n_lang, sizeof *res);
    met = calloc(n_lang, sizeof *met);
    if (!res || !met) {
        rc = pq_fail(&err, POLYQ_NOMEM, "out of memory");
        goto out;
    }
    for (size_t l = 0; l < n_lang && !rc; l++) {
        char *p = NULL;
        pq_corpus c = {0};
        pr.lang = langs[l];
        pr.li = l;
        if (!(rc = pq_dataset_path(&ds, langs[l], &p, &err)) &&
            !(rc = pq_corpus_load(&c, langs[l], p, max_sent, &err)))
            rc = pq_evaluate(ev, &c, &res[l], &err);
        pq_corpus_free(&c);
        free(p);
    }
    if (pr.on)
        fprintf(stderr, "\n");
    if (rc)
        goto out;
    pq_metrics_opts mo = {.n_boot = (int)n_boot, .seed = seed, .ref = ref_idx};
    if ((rc = pq_metrics_compute(res, n_lang, n_q, &mo, met, summary, &err)))
        goto out;
    const char *names[32], *methods[32];
    double bpw[32];
    for (int q = 0; q < n_q; q++) {
        names[q] = specs[q].name;
        methods[q] = pq_qspec_method(&specs[q]);
        bpw[q] = pq_model_bits_per_weight(qm[q]);
    }
    pq_run_info info = {
        .model_id = model_name, .model_path = model_path, .revision = model_rev,
        .architecture = fp->cfg.architecture, .model_type = fp->cfg.model_type, .pseudo = fp->cfg.encoder,
        .dtype = fp->dtype, .n_params = fp->n_params,
        .dataset = ds.root ? "flores200" : "text files", .split = ds.root ? split : NULL,
        .data_path = data ? data : data_dir, .max_sentences = max_sent, .ref_lang = ref,
        .ref_evaluated = ref_idx >= 0, .seed = seed, .n_boot = (int)n_boot,
        .threads = (int)threads, .batch_tokens = (int)batch, .stride = (int)stride, .wall_time_s = pq_now() - t0,
        .calibration = cal_desc, .n_q = n_q, .q_names = names, .q_methods = methods, .q_bits_per_weight = bpw,
        .memory_estimate_mb = plan.total / 1048576.0};
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    info.peak_rss_mb = ru.ru_maxrss / 1024.0;
    pq_report_table(stdout, &info, met, n_lang, summary);
    if (out_path && (rc = pq_report_json(out_path, &info, met, n_lang, summary, &err)))
        goto out;
    fflush(stdout);
    if (out_path)
        fprintf(stderr, "polyq: wrote %s\n", out_path);
out:
    if (met)
        pq_metrics_free(met, n_lang);
    free(met);
    for (size_t l = 0; res && l < n_lang; l++)
        pq_lang_eval_free(&res[l]);
    free(res);
    pq_evaluator_free(ev);
    for (int q = 0; q < n_q; q++)
        pq_model_free(qm[q]);
    pq_model_free(fp);
    pq_strlist_free(langs, n_lang);
    pq_dataset_free(&ds);
    free(data_dir);
    free(model_path);
    free(model_rev);
    pq_ids_free(&cal_store);
    free(cal_starts);
    free(cal_desc);
    return rc ? die(&err) : 0;
}

/* polyq quantize MODEL --quant SPEC --out DIR: one quantized model written for later
 * evaluations (polyq eval MODEL --quantized DIR). */
static int cmd_quantize(int argc, char **argv)
{
    const char *model_name = NULL, *quant = NULL, *out_dir = NULL, *data = NULL, *revision = NULL;
    unsigned long long threads = 1, batch = 512;
    calib_opts co = {.langs = "eng_Latn", .samples = 128, .eval_split = "devtest"};
    int ca;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    threads = ncpu > 0 ? (unsigned long long)ncpu : 1;
    bool offline = false;
    static const char *const value_opts[] = {"--quant", "--out", "--data", "--calib", "--calib-file",
                                             "--calib-samples", "--calib-tokens", "--threads",
                                             "--revision", NULL};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (option_value(argc, argv, &i, value_opts, &v))
            return bad_arg("%s needs a value", a);
        if (!strcmp(a, "--quant"))
            quant = v;
        else if (!strcmp(a, "--out"))
            out_dir = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--revision"))
            revision = v;
        else if (!strcmp(a, "--offline"))
            offline = true;
        else if ((ca = calib_arg(a, v, &co)) != 0) {
            if (ca < 0)
                return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_uint(v, 1024, &threads) || !threads)
                return bad_arg("--threads \"%s\" is not a count in 1..1024", v);
        } else if (a[0] == '-')
            return bad_arg("unknown option %s", a);
        else if (!model_name)
            model_name = a;
        else
            return bad_arg("unexpected argument \"%s\"", a);
    }
    if (!model_name || !quant || !out_dir)
        return bad_arg("%s", "quantize needs MODEL, --quant SPEC and --out DIR");
    polyq_err err = {0};
    pq_qspec spec;
    if (strchr(quant, ','))
        return bad_arg("--quant \"%s\": quantize writes one spec at a time", quant);
    if (pq_qspec_parse(quant, &spec, &err))
        return die(&err);
    size_t odl = out_dir ? strlen(out_dir) : 0;
    if (spec.none && !(odl > 5 && !strcmp(out_dir + odl - 5, ".gguf"))) /* an F32 GGUF is a conversion */
        return bad_arg("%s", "--quant fp32 has nothing to write (except as FILE.gguf: the model in F32)");

    pq_hub_opts ho = {.revision = revision, .offline = offline, .progress = isatty(2)};
    pq_model *fp = NULL, *q = NULL;
    char *path = NULL, *rev = NULL, *data_dir = NULL, *cal_desc = NULL, *meta = NULL;
    pq_ids store = {0};
    int *starts = NULL, n_seq = 0;
    bool gguf = false;
    int rc = open_model(model_name, &ho, &fp, &path, &rev, &err);
    bool calibrated = spec.gptq || spec.awq || spec.smooth;
    if (!rc && calibrated && !data && !co.file)
        rc = pq_flores_resolve(&ho, &data_dir, &err);
    if (!rc && calibrated) {
        co.data = data ? data : data_dir;
        rc = build_calib(fp, &co, &store, &starts, &n_seq, &cal_desc, &err);
    }
    if (!rc) {
        pq_calib cal = {store.v, starts, n_seq, (int)batch};
        if (spec.gptq)
            rc = pq_model_gptq(&q, fp, &spec, &cal, (int)threads, &err);
        else if (spec.awq)
            rc = pq_model_awq(&q, fp, &spec, &cal, (int)threads, &err);
        else if (spec.smooth) {
            pq_smooth_opts so = {spec.alpha, true, true, true};
            rc = pq_model_smoothquant(&q, fp, &spec, &so, &cal, (int)threads, &err);
        } else
            rc = pq_model_quantize(&q, fp, &spec, &err);
    }
    if (!rc) {
        json_t *m = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:f, s:o}", "version", 1, "spec", spec.name,
                              "method", pq_qspec_method(&spec), "polyq", POLYQ_VERSION, "base_model", model_name,
                              "base_revision", rev ? json_string(rev) : json_null(),
                              "bits_per_weight", pq_model_bits_per_weight(q),
                              "calibration", cal_desc ? json_loads(cal_desc, 0, NULL) : json_null());
        meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        size_t ol = strlen(out_dir);
        gguf = ol > 5 && !strcmp(out_dir + ol - 5, ".gguf");
        rc = !meta ? pq_fail(&err, POLYQ_NOMEM, "out of memory")
             : gguf ? pq_gguf_write_model(out_dir, q, spec.name, &err)
                    : pq_qfile_write(out_dir, q, meta, &err);
    }
    if (!rc)
        printf("wrote %s%s: %s, %.3f bits/weight in the quantized layers\n", out_dir,
               gguf ? "" : "/polyq-quant.safetensors", spec.name, pq_model_bits_per_weight(q));
    pq_model_free(q);
    pq_model_free(fp);
    pq_ids_free(&store);
    free(starts);
    free(path);
    free(rev);
    free(data_dir);
    free(cal_desc);
    free(meta);
    return rc ? die(&err) : 0;
}

/* The reference models of the study, with their role. */
static const struct { const char *id, *family, *params, *role; } reference_models[] = {
    {"openai-community/gpt2", "gpt2", "124M", "primary"},
    {"facebook/opt-125m", "opt", "125M", "validation"},
    {"EleutherAI/pythia-160m", "gpt_neox", "160M", "validation"},
    {"bigscience/bloom-560m", "bloom", "560M", "planned (multilingual)"},
    {"ai-forever/mGPT", "gpt2", "1.3B", "planned (multilingual)"},
    {"meta-llama/Llama-2-7b-hf", "llama", "7B", "planned (scale; gated)"},
    {"mistralai/Mistral-7B-v0.1", "mistral", "7B", "planned (scale)"},
    {"google-bert/bert-base-multilingual-cased", "bert", "178M", "encoder baseline (PLL)"},
    {"FacebookAI/xlm-roberta-base", "xlm-roberta", "278M", "encoder baseline (PLL)"},
};

static int cmd_models(void)
{
    char *cache = pq_hub_cache_dir();
    printf("%-42s %-12s %6s  %-28s %s\n", "hub id", "family", "params", "role", "cached");
    for (size_t i = 0; i < sizeof reference_models / sizeof reference_models[0]; i++)
        printf("%-42s %-12s %6s  %-28s %s\n", reference_models[i].id, reference_models[i].family,
               reference_models[i].params, reference_models[i].role,
               pq_hub_cached(reference_models[i].id, NULL) ? "yes" : "no");
    printf("\ncache: %s (polyq eval ID downloads a missing model there)\n", cache ? cache : "?");
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
    if (argc < 3)
        return bad_arg("%s", "info needs MODEL");
    polyq_err err = {0};
    pq_hub_opts ho = {.progress = isatty(2)};
    pq_model *m = NULL, *q8 = NULL, *q4 = NULL;
    char *path = NULL, *rev = NULL;
    pq_qspec s8, s4;
    int rc = open_model(argv[2], &ho, &m, &path, &rev, &err);
    if (!rc && !(rc = pq_qspec_parse("int8", &s8, &err)) && !(rc = pq_qspec_parse("int4-g128", &s4, &err)) &&
        !(rc = pq_model_quantize(&q8, m, &s8, &err)))
        rc = pq_model_quantize(&q4, m, &s4, &err);
    if (!rc) {
        const pq_config *c = &m->cfg;
        printf("model          %s%s%s\n", argv[2], rev ? " @ " : "", rev ? rev : "");
        printf("folder         %s\n", path);
        printf("architecture   %s (model_type %s), weights stored as %s\n", c->architecture,
               c->model_type, m->dtype);
        printf("parameters     %.1f M (%.1f M in block linear layers)\n", m->n_params / 1e6,
               q8->linear_params / 1e6);
        printf("shape          %d layers, hidden %d, %d heads (%d key/value), MLP %d, vocabulary %d, context %d\n",
               c->n_layer, c->n_embd, c->n_head, c->n_kv_head ? c->n_kv_head : c->n_head, c->n_inner,
               c->n_vocab, c->n_ctx);
        if (m->tok)
            printf("tokenizer      %s, %d ids%s\n", pq_tok_kind(m->tok), pq_tok_vocab_size(m->tok),
                   c->encoder ? "; a masked LM: scored by pseudo-log-likelihood" : "");
        else
            printf("tokenizer      none (bare weights run on ids; evaluation needs one)\n");
        if (m->tok && !c->encoder)
            printf("               sequences start with id %d\n", pq_model_bos(m));
        /* evaluation with the default batch: both models' logits, activations */
        int M = c->n_ctx > 512 ? c->n_ctx : 512;
        double act_mb = 2.0 * M * (double)c->n_vocab * 4 / 1e6 +
                        (double)M * (6.0 * c->n_embd + 2.0 * c->n_inner) * 4 / 1e6;
        printf("memory (MB)    weights f32 %.0f, int8 %.0f, int4-g128 %.0f; evaluation buffers %.0f;\n"
               "               eval fp32 + int8 + int4-g128 together about %.0f\n",
               weights_mb(m, q8->linear_params, 32), weights_mb(m, q8->linear_params, pq_model_bits_per_weight(q8)),
               weights_mb(m, q4->linear_params, pq_model_bits_per_weight(q4)), act_mb,
               weights_mb(m, q8->linear_params, 32) + q8->linear_bits / 8e6 + q4->linear_bits / 8e6 + act_mb);
    }
    pq_model_free(q4);
    pq_model_free(q8);
    pq_model_free(m);
    free(path);
    free(rev);
    return rc ? die(&err) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("polyq %s\n", POLYQ_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "eval"))
        return cmd_eval(argc, argv);
    if (!strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc, argv);
    if (!strcmp(argv[1], "quantize"))
        return cmd_quantize(argc, argv);
    if (!strcmp(argv[1], "report")) {
        if (argc != 5 || strcmp(argv[3], "--out"))
            return bad_arg("%s", "usage: polyq report RESULTS.json|RESULTS.db --out DIR");
        polyq_err err = {0};
        bool db = pq_is_sqlite(argv[2]);
        int rc = db ? pq_report_db(argv[2], argv[4], &err) : pq_report_export(argv[2], argv[4], &err);
        pq_figures_release();
        if (rc)
            return die(&err);
        printf(db ? "wrote results.json, results.csv, report.md, report.html and figures per model under %s\n"
                  : "wrote %s/results.csv, report.md, report.html and figures (SVG and PNG)\n", argv[4]);
        return 0;
    }
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc, argv);
    if (!strcmp(argv[1], "sweep"))
        return cmd_sweep(argc, argv);
    if (!strcmp(argv[1], "models"))
        return cmd_models();
    return bad_arg("unknown command \"%s\"", argv[1]);
}
