/* A program that knows libpolyq only through its installed header and pkg-config: opens a
 * model, quantizes it, evaluates languages and writes the results as JSON and CSV.
 *   example MODEL SPEC DATA LANGS MAX_SENTENCES OUT.json OUT.csv */
#include <polyq.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: example MODEL SPEC DATA LANGS MAX_SENTENCES OUT.json OUT.csv\n");
        return 2;
    }
    polyq_err err = {0};
    polyq_model *base = NULL, *q = NULL;
    polyq_results *r = NULL;
    polyq_eval_opts eo = {
        .data = argv[3], .langs = argv[4], .max_sentences = (size_t)atol(argv[5]), .threads = 2};
    int rc = polyq_model_open(&base, argv[1], NULL, &err);
    if (!rc)
        rc = polyq_quantize(&q, base, argv[2], NULL, &err);
    if (!rc)
        rc = polyq_evaluate(&r, base, &q, 1, &eo, &err);
    if (!rc)
        rc = polyq_results_write_json(r, argv[6], &err);
    if (!rc)
        rc = polyq_results_write_csv(r, argv[7], &err);
    for (size_t l = 0; !rc && l < polyq_results_n_langs(r); l++) {
        polyq_value v;
        if ((rc = polyq_results_get(r, l, 0, "delta_bits_per_sentence", &v, &err)))
            break;
        printf("%s %s %.6g [%.6g, %.6g] bits per sentence\n", polyq_results_lang(r, l),
               polyq_results_spec(r, 0), v.value, v.lo, v.hi);
    }
    if (rc)
        fprintf(stderr, "example: %s (%s)\n", err.msg, polyq_status_name(rc));
    polyq_results_free(r);
    polyq_model_free(q);
    polyq_model_free(base);
    return rc ? 1 : 0;
}
