/* Out-of-memory injection: the test binary is linked with --wrap=malloc,calloc,realloc so
 * every allocation polyq's own code makes can be made to fail. For each N, the N-th
 * allocation fails while a fixture model is opened, quantized and evaluated on two
 * sentences; every run must end with POLYQ_NOMEM (or succeed, once N passes the last
 * allocation), never crash, and free everything (checked by LeakSanitizer under make asan). */
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/metrics.h"
#include "format/torchbin.h"
#include "test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);

static long oom_fail_at = -1, oom_count;

void *__wrap_malloc(size_t n)
{
    if (oom_fail_at >= 0 && ++oom_count == oom_fail_at)
        return NULL;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t s)
{
    if (oom_fail_at >= 0 && ++oom_count == oom_fail_at)
        return NULL;
    return __real_calloc(n, s);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (oom_fail_at >= 0 && ++oom_count == oom_fail_at)
        return NULL;
    return __real_realloc(p, n);
}

/* One whole evaluation; returns its status. */
static int run_once(polyq_err *err)
{
    pq_model *m = NULL, *q = NULL;
    pq_evaluator *ev = NULL;
    pq_corpus c = {0};
    pq_lang_eval res = {0};
    pq_qspec spec;
    pq_lang_metrics met;
    pq_disparity_summary sum;
    int rc = pq_qspec_parse("int4-g16", &spec, err);
    if (!rc)
        rc = pq_model_open_dir(&m, pq_test_fixture("neox-tiny-f32"), err);
    if (!rc)
        rc = pq_model_quantize(&q, m, &spec, err);
    pq_eval_opts o = {.n_threads = 2, .batch_tokens = 64};
    if (!rc)
        rc = pq_evaluator_create(&ev, m, &q, 1, &o, err);
    if (!rc)
        rc = pq_corpus_load(&c, "eng_Latn",
                            pq_test_shared("data/flores200/devtest/eng_Latn.devtest"), 2, err);
    if (!rc)
        rc = pq_evaluate(ev, &c, &res, err);
    pq_metrics_opts mo = {.n_boot = 100, .seed = 1, .ref = 0};
    if (!rc && !(rc = pq_metrics_compute(&res, 1, 1, &mo, &met, &sum, err)))
        pq_metrics_free(&met, 1);
    pq_lang_eval_free(&res);
    pq_corpus_free(&c);
    pq_evaluator_free(ev);
    pq_model_free(q);
    pq_model_free(m);
    return rc;
}

TEST(oom_every_allocation)
{
    polyq_err err = {0};
    oom_fail_at = 0; /* count only */
    oom_count = 0;
    CHECK_OK(run_once(&err));
    long total = oom_count;
    CHECK(total > 50);
    if (getenv("PQ_TEST_VERBOSE"))
        fprintf(stderr, "  %ld allocations\n", total);
    long bad = 0;
    for (long n = 1; n <= total + 1; n++) {
        oom_fail_at = n;
        oom_count = 0;
        err.msg[0] = 0;
        int rc = run_once(&err);
        bool ok = n > total ? rc == 0 : rc == POLYQ_NOMEM;
        if (!ok && bad++ < 8)
            FAILF("allocation %ld of %ld failing gave status %d: %s", n, total, rc, err.msg);
    }
    oom_fail_at = -1;
    CHECK_INT(bad, 0);
}

/* The same for a sharded pytorch_model.bin (ZIP + pickle) and the BLOOM-style tokenizer
 * (Split regex, byte-level BPE) encoding and decoding a sentence. */
static int run_readers(polyq_err *err)
{
    pq_tensors ts = {0};
    pq_tokenizer *tok = NULL;
    pq_ids ids = {0};
    char *back = NULL;
    int rc = pq_tensors_open_dir(&ts, pq_test_fixture("gpt2-tiny-bin-sharded"), err);
    if (!rc)
        rc = pq_tensors_open_torch(&ts, pq_test_fixture("torch/views.bin"), err);
    if (!rc)
        rc =
            pq_tok_load_json(&tok, pq_test_fixture("tokenizers/bloom-standin/tokenizer.json"), err);
    static const char text[] =
        "Le chat, qui dort, est noir. "
        "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87!";
    if (!rc)
        rc = pq_tok_encode(tok, text, sizeof text - 1, &ids, err);
    if (!rc)
        rc = pq_tok_decode(tok, ids.v, ids.n, &back, NULL, err);
    free(back);
    pq_ids_free(&ids);
    pq_tok_free(tok);
    pq_tensors_close(&ts);
    return rc;
}

TEST(oom_readers)
{
    polyq_err err = {0};
    oom_fail_at = 0;
    oom_count = 0;
    CHECK_OK(run_readers(&err));
    long total = oom_count, bad = 0;
    for (long n = 1; n <= total + 1; n++) {
        oom_fail_at = n;
        oom_count = 0;
        err.msg[0] = 0;
        int rc = run_readers(&err);
        bool ok = n > total ? rc == 0 : rc == POLYQ_NOMEM;
        if (!ok && bad++ < 8)
            FAILF("allocation %ld of %ld failing gave status %d: %s", n, total, rc, err.msg);
    }
    oom_fail_at = -1;
    CHECK_INT(bad, 0);
}
