/* What polyq writes: a JSON results file with every number of METRICS.md and the
 * provenance of the run, and a table for people. */
#ifndef PQ_REPORT_H
#define PQ_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "eval/metrics.h"

typedef struct pq_run_info {
    const char *model_id;   /* as given on the command line */
    const char *model_path; /* resolved folder */
    const char *revision;   /* hub commit, or NULL for a local folder */
    const char *architecture, *model_type, *dtype;
    bool pseudo; /* scored by pseudo-log-likelihood (masked LM), not left to right */
    uint64_t n_params;
    const char *dataset, *split, *data_path;
    uint64_t max_sentences; /* 0 = all */
    const char *ref_lang;
    int ref_evaluated;
    uint64_t seed;
    int n_boot, threads, batch_tokens;
    int stride;     /* document mode's stride, 0 for sentences */
    int context;    /* the longest window evaluated (pq_eval_context) */
    bool llama_ppl; /* document mode scored as llama-perplexity --ppl-stride scores */
    double wall_time_s;
    double memory_estimate_mb, peak_rss_mb;
    int n_q;
    const char *calibration; /* JSON object text describing the calibration set, or NULL */
    const char *const *q_names;
    const char *const *q_methods; /* "rtn", "ggml", "bitsandbytes" */
    const double *q_bits_per_weight;
    const char *const *q_details; /* human description of each spec */
    const char *const *q_formats; /* per spec: its linears per storage format, a JSON object */
    json_t *provenance;           /* command line, build, host, libraries, files (may be NULL) */
    const char *const *q_sources; /* per spec: the file it was read from, or NULL */
    const char *const *q_calibrations; /* per spec: its calibration set (JSON text), or NULL */
    const char *sentences_file, *sentences_sha256; /* the --log-sentences file, or NULL */
    int32_t prefix_id;        /* causal scoring: each sentence is scored after this token */
    const char *prefix_token; /* its text (NULL: not known) */
    int file_add_bos;         /* the model file's add_bos_token: 1, 0, or -1 (not said) */
} pq_run_info;

/* The results document (new reference; NULL when out of memory), and it written to path
 * atomically. */
json_t *pq_report_doc(const pq_run_info *info, const pq_lang_metrics *m, size_t n_lang,
                      const pq_disparity_summary *summary);
int pq_report_json(const char *path, const pq_run_info *info, const pq_lang_metrics *m,
                   size_t n_lang, const pq_disparity_summary *summary, polyq_err *err);
void pq_report_table(FILE *f, const pq_run_info *info, const pq_lang_metrics *m, size_t n_lang,
                     const pq_disparity_summary *summary);

/* The tidy CSV of a results document (a row per language x spec x metric), written atomically. */
int pq_report_csv(const char *path, const json_t *results, polyq_err *err);
/* polyq report: results.csv, report.md, report.html and the figures in out_dir from a results
 * JSON file (latex: also tables.tex, report.md's tables in booktabs). */
int pq_report_export(const char *results, const char *out_dir, bool latex, polyq_err *err);
/* The same from a polyq sweep database: per model, out_dir/<model>/results.json, results.csv
 * and report.md over the languages finished for every spec (dbreport.c). */
int pq_report_db(const char *db, const char *out_dir, bool latex, polyq_err *err);
/* Reading a results document back (export.c): a number (NaN when absent or not a number), a
 * string ("" when absent), the full-precision entry of a language (NULL when absent). */
double pq_rj_num(const json_t *o, const char *key);
const char *pq_rj_str(const json_t *o, const char *key);
const json_t *pq_rj_fp_lang(const json_t *full_precision, const char *lang);
/* How many languages a results document's "data" names: its "n_languages", the length of its
 * "languages" list, or (files of polyq 0.1.0) "languages" as a count. */
long long pq_rj_n_languages(const json_t *data);
/* Whether path is an SQLite database (its first 16 bytes). */
bool pq_is_sqlite(const char *path);

#endif
