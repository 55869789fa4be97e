/* llama.cpp's negative log-likelihood of each line of a file scored as polyq scores a sentence:
 * after the vocabulary's BOS, every token of the line predicted from the ones before it, in
 * one sequence from position 0, with an F32 KV cache and without flash attention (so f32
 * numerics throughout on an F32 model file). Prints one "N_TOKENS NLL_NATS" per line. For
 * checking polyq's families against llama.cpp by hand (tools/check_llama_nll.py); part of no
 * polyq build.   llama_sentence_nll MODEL.gguf FILE [MAX_LINES]                          */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int max_lines = argc > 3 ? atoi(argv[3]) : 1 << 30;
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model)
        return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 1024;
    cp.n_batch = 1024;
    cp.n_ubatch = 1024;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx)
        return 1;
    FILE *f = fopen(argv[2], "rb");
    if (!f)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    llama_token ids[1024];
    struct llama_batch b = llama_batch_init(1024, 0, 1);
    for (int no = 0; no < max_lines && (len = getline(&line, &cap, f)) >= 0; no++) {
        if (len && line[len - 1] == '\n')
            len--;
        ids[0] = llama_vocab_bos(vocab);
        int n = llama_tokenize(vocab, line, (int32_t)len, ids + 1, 1023, false, false);
        if (n < 0)
            return 1;
        n += 1;
        llama_memory_clear(llama_get_memory(ctx), true);
        b.n_tokens = n;
        for (int i = 0; i < n; i++) {
            b.token[i] = ids[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        if (llama_decode(ctx, b))
            return 1;
        double nll = 0;
        for (int i = 0; i + 1 < n; i++) {
            const float *lg = llama_get_logits_ith(ctx, i);
            double mx = -INFINITY, s = 0;
            for (int v = 0; v < n_vocab; v++)
                mx = lg[v] > mx ? lg[v] : mx;
            for (int v = 0; v < n_vocab; v++)
                s += exp((double)lg[v] - mx);
            nll -= (double)lg[ids[i + 1]] - mx - log(s);
        }
        printf("%d %.9f\n", n - 1, nll);
    }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
