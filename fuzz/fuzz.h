/* Fuzz targets for every reader of untrusted bytes. Each target is a plain function so the
 * test run can replay the committed corpus (tests/test_fuzz_replay.c) without libFuzzer;
 * fuzz/libfuzzer_main.c wraps one of them as LLVMFuzzerTestOneInput. A target returns 0 and
 * must never crash, leak or trip a sanitizer, whatever the bytes. */
#ifndef PQ_FUZZ_H
#define PQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int pq_fuzz_safetensors(const uint8_t *data, size_t size);
int pq_fuzz_tokenizer_json(const uint8_t *data, size_t size);
int pq_fuzz_encode(const uint8_t *data, size_t size);
int pq_fuzz_qspec(const uint8_t *data, size_t size);
int pq_fuzz_torchbin(const uint8_t *data, size_t size);
int pq_fuzz_config(const uint8_t *data, size_t size);
int pq_fuzz_vocab_merges(const uint8_t *data, size_t size);
int pq_fuzz_corpus(const uint8_t *data, size_t size);
int pq_fuzz_spm_model(const uint8_t *data, size_t size);
int pq_fuzz_vocab_txt(const uint8_t *data, size_t size);
int pq_fuzz_qfile(const uint8_t *data, size_t size);
int pq_fuzz_gguf(const uint8_t *data, size_t size);
int pq_fuzz_plan(const uint8_t *data, size_t size);
int pq_fuzz_wire(const uint8_t *data, size_t size);
int pq_fuzz_sweep_db(const uint8_t *data, size_t size);
int pq_fuzz_sweep_plan(const uint8_t *data, size_t size);
int pq_fuzz_compare(const uint8_t *data, size_t size);

/* Removes the scratch folder the path-based targets write into. */
void pq_fuzz_cleanup(void);

typedef struct pq_fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} pq_fuzz_target;
extern const pq_fuzz_target pq_fuzz_targets[];

#endif
