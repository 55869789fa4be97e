/* The fuzz targets (see fuzz.h). encode also checks a property: valid UTF-8 decodes back to
 * itself byte for byte. It uses the GPT-2 tokenizer of the real-vocabulary fixture
 * (POLYQ_FUZZ_TOKENIZER overrides the path). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/safetensors.h"
#include "format/torchbin.h"
#include "quant/qformat.h"
#include "tok/tokenizer.h"

int pq_fuzz_safetensors(const uint8_t *data, size_t size)
{
    pq_tensors ts = {0};
    polyq_err err = {0};
    if (pq_tensors_add_buffer(&ts, "fuzz.safetensors", data, size, &err) == 0) {
        float tmp[64];
        for (size_t i = 0; i < ts.n; i++)
            if (ts.t[i].numel <= 64)
                pq_tensor_to_f32(&ts.t[i], tmp, &err);
    }
    pq_tensors_close(&ts);
    return 0;
}

int pq_fuzz_tokenizer_json(const uint8_t *data, size_t size)
{
    pq_tokenizer *t = NULL;
    polyq_err err = {0};
    if (pq_tok_load_json_buffer(&t, "fuzz.json", (const char *)data, size, &err) == 0) {
        static const char probe[] = "Hello world, 123 <|endoftext|> \xe4\xbd\xa0\xe5\xa5\xbd !!";
        pq_ids ids = {0};
        if (pq_tok_encode(t, probe, sizeof probe - 1, &ids, &err) == 0) {
            char *back = NULL;
            if (pq_tok_decode(t, ids.v, ids.n, &back, NULL, &err) == 0)
                free(back);
        }
        pq_ids_free(&ids);
    }
    pq_tok_free(t);
    return 0;
}

int pq_fuzz_encode(const uint8_t *data, size_t size)
{
    static pq_tokenizer *tok;
    if (!tok) {
        const char *p = getenv("POLYQ_FUZZ_TOKENIZER");
        polyq_err err = {0};
        if (pq_tok_load_json(&tok, p ? p : "tests/fixtures/gpt2-tiny-vocab-bf16/tokenizer.json", &err)) {
            fprintf(stderr, "fuzz_encode: %s\n", err.msg);
            abort();
        }
    }
    pq_ids ids = {0};
    polyq_err err = {0};
    if (pq_tok_encode(tok, (const char *)data, size, &ids, &err) == 0) {
        char *back = NULL;
        size_t len = 0;
        if (pq_tok_decode(tok, ids.v, ids.n, &back, &len, &err) != 0 || len != size ||
            memcmp(back, data, size) != 0)
            abort(); /* byte-level BPE must be lossless */
        free(back);
    } else if (pq_utf8_valid((const char *)data, size, NULL)) {
        abort(); /* valid text must always encode */
    }
    pq_ids_free(&ids);
    return 0;
}

int pq_fuzz_qspec(const uint8_t *data, size_t size)
{
    char buf[256];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    pq_qspec spec;
    polyq_err err = {0};
    if (pq_qspec_parse(buf, &spec, &err) == 0 && !spec.none) {
        float w[2 * 40];
        for (int i = 0; i < 80; i++)
            w[i] = (float)((i * 37) % 19) - 9.0f;
        pq_qweight *q = NULL;
        if (pq_qweight_rtn(w, 2, 40, &spec, &q, &err) == 0) {
            float row[40];
            pq_qweight_dequant_row(q, 1, row);
        }
        pq_qweight_free(q);
    }
    return 0;
}

int pq_fuzz_torchbin(const uint8_t *data, size_t size)
{
    pq_tensors ts = {0};
    polyq_err err = {0};
    if (pq_torch_add_buffer(&ts, "fuzz.bin", data, size, &err) == 0) {
        float tmp[64];
        for (size_t i = 0; i < ts.n; i++)
            if (ts.t[i].numel <= 64)
                pq_tensor_to_f32(&ts.t[i], tmp, &err);
    }
    pq_tensors_close(&ts);
    return 0;
}

const pq_fuzz_target pq_fuzz_targets[] = {
    {"safetensors", pq_fuzz_safetensors},
    {"tokenizer_json", pq_fuzz_tokenizer_json},
    {"encode", pq_fuzz_encode},
    {"qspec", pq_fuzz_qspec},
    {"torchbin", pq_fuzz_torchbin},
    {NULL, NULL},
};
