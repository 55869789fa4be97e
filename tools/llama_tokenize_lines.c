/* llama.cpp's tokenizer on whole files of lines, for tools/gen_llama_tokenize_golden.py: loads
 * the vocabulary of a GGUF once and, for each FILE, prints
 *   > NAME N_LINES DECODE_FNV1A64HEX
 * (the hash of every line's detokenized text followed by a newline) and per line
 *   N_IDS IDS_FNV1A64HEX
 * (the ids as 4 little-endian bytes each), the format of tests/golden/tok_*_devtest.txt. Each
 * line is tokenized alone, without the BOS/EOS the vocabulary may add (add_special false: polyq
 * puts its own prefix token before a sentence) and special-token text read as text
 * (parse_special false), as llama-perplexity reads its text.
 * Built against libllama by gen_llama_tokenize_golden.py; part of no polyq build.
 *   llama_tokenize_lines MODEL.gguf NAME=FILE...                                              */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf NAME=FILE...\n", argv[0]);
        return 2;
    }
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model)
        return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    size_t cap = 1 << 16;
    llama_token *ids = malloc(cap * sizeof *ids);
    char *text = malloc(1 << 20);
    for (int a = 2; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq)
            return 2;
        *eq = 0;
        FILE *f = fopen(eq + 1, "rb");
        if (!f)
            return 1;
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        size_t n_lines = 0;
        uint64_t dec = 0xcbf29ce484222325ULL;
        char *out = NULL;
        size_t olen = 0, ocap = 0;
        while ((len = getline(&line, &lcap, f)) >= 0) {
            if (len && line[len - 1] == '\n')
                len--;
            if (len && line[len - 1] == '\r')
                len--;
            int32_t n = llama_tokenize(vocab, line, (int32_t)len, ids, (int32_t)cap, false, false);
            if (n < 0)
                return 1;
            uint64_t h = 0xcbf29ce484222325ULL;
            for (int32_t i = 0; i < n; i++) {
                unsigned char b[4] = {(unsigned char)ids[i], (unsigned char)(ids[i] >> 8),
                                      (unsigned char)(ids[i] >> 16), (unsigned char)(ids[i] >> 24)};
                h = fnv(h, b, 4);
            }
            int32_t dn = llama_detokenize(vocab, ids, n, text, 1 << 20, false, false);
            if (dn < 0)
                return 1;
            dec = fnv(fnv(dec, text, (size_t)dn), "\n", 1);
            char row[64];
            int w = snprintf(row, sizeof row, "%d %016llx\n", n, (unsigned long long)h);
            if (olen + (size_t)w + 1 > ocap) {
                ocap = 2 * (olen + (size_t)w + 1);
                out = realloc(out, ocap);
            }
            memcpy(out + olen, row, (size_t)w);
            olen += (size_t)w;
            n_lines++;
        }
        fclose(f);
        free(line);
        printf("> %s %zu %016llx\n", argv[a], n_lines, (unsigned long long)dec);
        fwrite(out, 1, olen, stdout);
        free(out);
    }
    free(ids);
    free(text);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
