/* The public API (include/polyq.h) on a fixture: the numbers it gives are those of the library's
 * own evaluation run, a quantized copy survives being saved and loaded, and every misuse gets
 * a status and a message. The installed-library build is checked by tests/install_check.sh. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"
#include "polyq.h"
#include "test.h"

TEST(api_open_quantize_evaluate_write)
{
    polyq_err err = {0};
    polyq_model *base = NULL, *q = NULL, *back = NULL;
    polyq_results *r = NULL, *r2 = NULL;
    CHECK(!strcmp(polyq_version(), POLYQ_VERSION));
    CHECK_OK(polyq_model_open(&base, "tests/fixtures/llama-tiny-vocab-bf16", NULL, &err));
    if (!base)
        return;
    CHECK(!strcmp(polyq_model_type(base), "llama") && !strcmp(polyq_model_spec(base), "fp32"));
    CHECK_FAILS(polyq_quantize(&q, base, "int9", NULL, &err), POLYQ_INVALID_ARG, "int9");
    CHECK_FAILS(polyq_quantize(&q, base, "gptq-int4-g16", NULL, &err), POLYQ_INVALID_ARG,
                "needs calibration text");
    polyq_quant_opts qo = {.data = pq_test_shared("data/flores200"), .calib_samples = 8};
    CHECK_OK(polyq_quantize(&q, base, "gptq-int4-g16", &qo, &err));
    if (!q)
        goto out;
    CHECK(!strcmp(polyq_model_spec(q), "gptq-int4-g16") && polyq_model_bits_per_weight(q) < 8);
    char *dir = pq_asprintf("%s/api-q", pq_test_tmpdir());
    CHECK_OK(polyq_quantized_save(q, dir, &err));
    err = (polyq_err){POLYQ_INVALID_ARG,
                      "an earlier failure"}; /* a loader must not read err's old state */
    CHECK_OK(polyq_quantized_load(&back, base, dir, &err));
    free(dir);
    polyq_eval_opts eo = {.data = pq_test_shared("data/flores200"),
                          .langs = "eng_Latn,hin_Deva",
                          .max_sentences = 3,
                          .bootstrap = 100};
    CHECK_FAILS(polyq_evaluate(&r, base, &q, 1, &(polyq_eval_opts){0}, &err), POLYQ_INVALID_ARG,
                "opts->data");
    CHECK_OK(polyq_evaluate(&r, base, &q, 1, &eo, &err));
    if (back)
        CHECK_OK(polyq_evaluate(&r2, base, &back, 1, &eo, &err));
    if (!r || !r2)
        goto out;
    CHECK_INT(polyq_results_n_langs(r), 2);
    CHECK_INT(polyq_results_n_specs(r), 1);
    CHECK(!strcmp(polyq_results_lang(r, 1), "hin_Deva") &&
          !strcmp(polyq_results_spec(r, 0), "gptq-int4-g16"));
    for (size_t l = 0; l < 2; l++) {
        polyq_value a, b;
        CHECK_OK(polyq_results_get(r, l, 0, "kld", &a, &err));
        CHECK_OK(polyq_results_get(r2, l, 0, "kld", &b, &err));
        CHECK(a.value > 0 && a.lo <= a.value && a.value <= a.hi);
        CHECK(a.value == b.value); /* the saved copy is the same model */
    }
    polyq_value v;
    CHECK_FAILS(polyq_results_get(r, 0, 0, "ppl", &v, &err), POLYQ_INVALID_ARG,
                "no metric \"ppl\"");
    CHECK_FAILS(polyq_results_get(r, 2, 0, "kld", &v, &err), POLYQ_INVALID_ARG, "no language 2");
    char *json = pq_asprintf("%s/api.json", pq_test_tmpdir()),
         *csv = pq_asprintf("%s/api.csv", pq_test_tmpdir());
    CHECK_OK(polyq_results_write_json(r, json, &err));
    CHECK_OK(polyq_results_write_csv(r, csv, &err));
    char *text = NULL;
    CHECK(pq_read_file(csv, 1 << 20, &text, NULL, &err) == 0 && text &&
          strstr(text, "gptq-int4-g16,gptq") && strstr(text, "hin_Deva"));
    free(text);
    text = NULL;
    CHECK(pq_read_file(json, 1 << 22, &text, NULL, &err) == 0 && text &&
          strstr(text, "\"calibration\""));
    free(text);
    free(json);
    free(csv);
out:
    polyq_results_free(r);
    polyq_results_free(r2);
    polyq_model_free(back);
    polyq_model_free(q);
    polyq_model_free(base);
}

/* A quantized-model file whose polyq.meta names a spec its tensors do not hold is refused by
 * name (it would be reported under the wrong spec). */
TEST(api_relabelled_quantized_file_refused)
{
    polyq_err err = {0};
    pq_model *base = NULL, *q = NULL, *back = NULL;
    char *meta = NULL;
    CHECK_OK(pq_model_open_dir(&base, "tests/fixtures/llama-tiny-vocab-bf16", &err));
    if (base)
        CHECK_OK(pq_qfile_load(&q, base, "tests/fixtures/qfile-v1/int4-g16", &meta, &err));
    char *dir = pq_asprintf("%s/relabelled", pq_test_tmpdir());
    static const char *const lies[] = {"{\"version\": 1, \"spec\": \"int8\"}",
                                       "{\"version\": 1, \"spec\": \"q4_0\"}",
                                       "{\"version\": 1, \"spec\": \"int4-g32\"}",
                                       "{\"version\": 1, \"spec\": \"int4-g16-head\"}"};
    for (size_t i = 0; q && i < sizeof lies / sizeof lies[0]; i++) {
        CHECK_OK(pq_qfile_write(dir, q, lies[i], &err));
        err.msg[0] = 0;
        char *m2 = NULL;
        CHECK(
            pq_qfile_load(&back, base, dir, &m2, &err) != 0 &&
            (strstr(err.msg, "does not make of it") || strstr(err.msg, "holds no quantized head")));
        free(m2);
        pq_model_free(back);
        back = NULL;
    }
    free(meta);
    free(dir);
    pq_model_free(q);
    pq_model_free(base);
}
