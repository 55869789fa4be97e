/* Evaluation speed and memory of one model shape at one precision or quantization spec.
 *
 *   polyq-bench [--shape gpt2-124m|llama-1.1b|llama-7b|MODEL_DIR] [--dtype F32|F16|BF16]
 *         [--quant SPEC] [--threads N] [--tokens N] [--batch-tokens N] [--seq-len N]
 *         [--reps N] [--models DIR] [--ref-tokens N] [--one-thread] [--header]
 *
 * A named shape is a model with that architecture and random weights, written once as
 * config.json + model.safetensors under --models (default build/bench-models) and then opened
 * like any downloaded model; --shape also takes a model folder or a GGUF file (its quantized
 * blocks computed as stored, with --quant fp32, as `polyq eval FILE.gguf` computes them). The text
 * is FLORES-like: sentences of 20 to 400 tokens (log-uniform, seeded), sorted by length and packed
 * into batches of --batch-tokens as `polyq eval` packs them; --seq-len N makes every sequence N
 * tokens long instead (each batch at least one). Each repetition runs every sentence once, logits
 * for every token; the row gives the median tokens per second (wall clock) and the range over
 * --reps repetitions, the median tokens per CPU-second (the process's CPU time: what load on the
 * machine distorts least), the peak resident memory of the whole run (VmHWM) and the fraction of
 * the machine's FP32 FMA peak that the matrix products reach. The peak is measured: every thread at
 * once runs independent chains of FMA instructions (enough of them to hide the FMA latency of two
 * pipes) as wide as the CPU offers, and the rates are added; the clock the OS reports is
 * printed beside it, with the FMA instructions per cycle that implies. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "model/model.h"
#include "run/run.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- the machine's peak ---------------------------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The clock the OS reports (Hz): cpufreq's maximum, else the highest "cpu MHz" of
 * /proc/cpuinfo; 0 when neither says. (A chain of dependent additions is no clock: some cores
 * retire more than one per cycle.) */
static double os_clock_hz(void)
{
    double khz = 0, mhz = 0, v;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
    if (f) {
        if (fscanf(f, "%lf", &v) == 1 && v > 0)
            khz = v;
        fclose(f);
    }
    if (khz > 0)
        return khz * 1e3;
    char line[256];
    f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "cpu MHz : %lf", &v) == 1 && v > mhz)
            mhz = v;
    if (f)
        fclose(f);
    return mhz * 1e6;
}

#if defined(__x86_64__)
/* FLOP/s of one core in 12 independent FMA chains (enough to cover the latency of two FMA
 * pipes), 16 (AVX-512) or 8 (AVX2) floats wide; the chains are named variables so that they
 * stay in registers. */
#define FMA_RATE(NAME, TARGET, VEC, WIDTH, SET1, FMADD, ADD, LOW)                                  \
    __attribute__((target(TARGET))) static double NAME(void)                                       \
    {                                                                                              \
        VEC m = SET1(0.999999f), a = SET1(1e-7f);                                                  \
        VEC c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3), c4 = SET1(4), c5 = SET1(5);    \
        VEC c6 = SET1(6), c7 = SET1(7), c8 = SET1(8), c9 = SET1(9), c10 = SET1(10),                \
            c11 = SET1(11);                                                                        \
        long n = 50000000;                                                                         \
        double t0 = now();                                                                         \
        for (long it = 0; it < n; it++) {                                                          \
            c0 = FMADD(c0, m, a), c1 = FMADD(c1, m, a), c2 = FMADD(c2, m, a);                      \
            c3 = FMADD(c3, m, a), c4 = FMADD(c4, m, a), c5 = FMADD(c5, m, a);                      \
            c6 = FMADD(c6, m, a), c7 = FMADD(c7, m, a), c8 = FMADD(c8, m, a);                      \
            c9 = FMADD(c9, m, a), c10 = FMADD(c10, m, a), c11 = FMADD(c11, m, a);                  \
            __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));     \
        }                                                                                          \
        double dt = now() - t0;                                                                    \
        VEC sum = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));               \
        sum = ADD(sum, ADD(ADD(c8, c9), ADD(c10, c11)));                                           \
        return LOW(sum) == 12345.0f ? 0 : 2.0 * WIDTH * 12 * (double)n / dt;                       \
    }
__attribute__((target("avx512f"))) static inline float low512(__m512 v)
{
    return _mm512_cvtss_f32(v);
}
__attribute__((target("avx2"))) static inline float low256(__m256 v)
{
    return _mm256_cvtss_f32(v);
}
FMA_RATE(fma_rate_512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
         low512)
FMA_RATE(fma_rate_256, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
         low256)
#endif

typedef struct {
    int lanes, threads;
    double hz, peak;      /* the OS's clock (0: unknown); FLOP/s of all threads */
    double fma_per_cycle; /* per thread, at hz (0 when hz is unknown) */
    const char *isa;
} machine_peak;

typedef struct {
    double (*rate)(void);
    double out;
} fma_job;

static void *fma_thread(void *p)
{
    fma_job *j = p;
    j->out = j->rate();
    return NULL;
}

/* FLOP/s of n threads running rate() at the same moment (the rates added), best of 3. */
static double fma_together(double (*rate)(void), int n)
{
    fma_job jobs[256];
    pthread_t th[256];
    if (n > 256)
        n = 256;
    bool made[256] = {0};
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < n; i++) {
            jobs[i] = (fma_job){.rate = rate};
            made[i] = i > 0 && pthread_create(&th[i], NULL, fma_thread, &jobs[i]) == 0;
        }
        fma_thread(&jobs[0]);
        double sum = jobs[0].out;
        for (int i = 1; i < n; i++)
            if (made[i]) {
                pthread_join(th[i], NULL);
                sum += jobs[i].out;
            }
        best = sum > best ? sum : best;
    }
    return best;
}

static machine_peak find_peak(int threads)
{
    machine_peak p = {.lanes = 4, .threads = threads, .isa = "SSE"};
    p.hz = os_clock_hz();
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        p.lanes = 16, p.isa = "AVX-512";
        p.peak = fma_together(fma_rate_512, threads);
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        p.lanes = 8, p.isa = "AVX2+FMA";
        p.peak = fma_together(fma_rate_256, threads);
    }
#endif
    if (p.peak > 0 && p.hz > 0)
        p.fma_per_cycle = p.peak / threads / (2.0 * p.lanes * p.hz);
    return p;
}

/* ---- synthetic models -------------------------------------------------------------------- */

typedef struct {
    const char *name, *arch;
    int vocab, ctx, embd, layers, heads, kv_heads, inner;
} shape;

static const shape shapes[] = {
    {"gpt2-124m", "gpt2", 50257, 1024, 768, 12, 12, 12, 3072},
    {"llama-1.1b", "llama", 32000, 2048, 2048, 22, 32, 4, 5632},
    {"llama-7b", "llama", 32000, 4096, 4096, 32, 32, 32, 11008},
};

typedef struct {
    char name[128];
    int64_t shape[2];
    int n_dims;
    bool norm; /* filled with ones */
} tensor_plan;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The tensors of a shape, with names and layouts as the Hugging Face checkpoints store them. */
static size_t plan_tensors(const shape *s, tensor_plan *t, size_t cap)
{
    size_t n = 0;
#define ADD(nd, d0, d1, isnorm, ...)                                                               \
    do {                                                                                           \
        if (n < cap) {                                                                             \
            snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__);                                    \
            t[n].n_dims = nd, t[n].shape[0] = d0, t[n].shape[1] = d1, t[n].norm = isnorm;          \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)
    int C = s->embd, I = s->inner, D = C / s->heads, KV = s->kv_heads * D;
    if (!strcmp(s->arch, "gpt2")) {
        ADD(2, s->vocab, C, false, "wte.weight");
        ADD(2, s->ctx, C, false, "wpe.weight");
        for (int l = 0; l < s->layers; l++) {
            ADD(1, C, 0, true, "h.%d.ln_1.weight", l);
            ADD(1, C, 0, false, "h.%d.ln_1.bias", l);
            ADD(2, C, 3 * C, false, "h.%d.attn.c_attn.weight", l);
            ADD(1, 3 * C, 0, false, "h.%d.attn.c_attn.bias", l);
            ADD(2, C, C, false, "h.%d.attn.c_proj.weight", l);
            ADD(1, C, 0, false, "h.%d.attn.c_proj.bias", l);
            ADD(1, C, 0, true, "h.%d.ln_2.weight", l);
            ADD(1, C, 0, false, "h.%d.ln_2.bias", l);
            ADD(2, C, I, false, "h.%d.mlp.c_fc.weight", l);
            ADD(1, I, 0, false, "h.%d.mlp.c_fc.bias", l);
            ADD(2, I, C, false, "h.%d.mlp.c_proj.weight", l);
            ADD(1, C, 0, false, "h.%d.mlp.c_proj.bias", l);
        }
        ADD(1, C, 0, true, "ln_f.weight");
        ADD(1, C, 0, false, "ln_f.bias");
    } else {
        ADD(2, s->vocab, C, false, "model.embed_tokens.weight");
        for (int l = 0; l < s->layers; l++) {
            ADD(1, C, 0, true, "model.layers.%d.input_layernorm.weight", l);
            ADD(2, C, C, false, "model.layers.%d.self_attn.q_proj.weight", l);
            ADD(2, KV, C, false, "model.layers.%d.self_attn.k_proj.weight", l);
            ADD(2, KV, C, false, "model.layers.%d.self_attn.v_proj.weight", l);
            ADD(2, C, C, false, "model.layers.%d.self_attn.o_proj.weight", l);
            ADD(1, C, 0, true, "model.layers.%d.post_attention_layernorm.weight", l);
            ADD(2, I, C, false, "model.layers.%d.mlp.gate_proj.weight", l);
            ADD(2, I, C, false, "model.layers.%d.mlp.up_proj.weight", l);
            ADD(2, C, I, false, "model.layers.%d.mlp.down_proj.weight", l);
        }
        ADD(1, C, 0, true, "model.norm.weight");
        ADD(2, s->vocab, C, false, "lm_head.weight");
    }
#undef ADD
    return n;
}

static int write_config(const shape *s, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    if (!strcmp(s->arch, "gpt2"))
        fprintf(f,
                "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", "
                "\"vocab_size\": %d, "
                "\"n_positions\": %d, \"n_embd\": %d, \"n_layer\": %d, \"n_head\": %d, "
                "\"activation_function\": \"gelu_new\", \"layer_norm_epsilon\": 1e-05, "
                "\"bos_token_id\": 50256, \"eos_token_id\": 50256}\n",
                s->vocab, s->ctx, s->embd, s->layers, s->heads);
    else
        fprintf(
            f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
            "\"vocab_size\": %d, "
            "\"max_position_embeddings\": %d, \"hidden_size\": %d, \"num_hidden_layers\": %d, "
            "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"intermediate_size\": %d, "
            "\"hidden_act\": \"silu\", \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
            "\"tie_word_embeddings\": false, \"bos_token_id\": 1, \"eos_token_id\": 2}\n",
            s->vocab, s->ctx, s->embd, s->layers, s->heads, s->kv_heads, s->inner);
    return fclose(f);
}

/* Writes dir/model.safetensors: uniform weights of spread 1/sqrt(inputs), norms at 1. */
static int write_weights(const shape *s, const char *dtype, const char *dir)
{
    size_t n = plan_tensors(s, NULL, 0);
    tensor_plan *t = calloc(n, sizeof *t);
    if (!t)
        return -1;
    plan_tensors(s, t, n);
    int esz = !strcmp(dtype, "F32") ? 4 : 2;
    size_t hcap = n * 200 + 64, hlen = 0, off = 0;
    char *h = malloc(hcap);
    if (!h) {
        free(t);
        return -1;
    }
    hlen += (size_t)snprintf(h + hlen, hcap - hlen, "{");
    for (size_t i = 0; i < n; i++) {
        size_t numel = (size_t)t[i].shape[0] * (size_t)(t[i].n_dims == 2 ? t[i].shape[1] : 1);
        if (t[i].n_dims == 2)
            hlen += (size_t)snprintf(
                h + hlen, hcap - hlen,
                "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                i ? "," : "", t[i].name, dtype, (long long)t[i].shape[0], (long long)t[i].shape[1],
                off, off + numel * esz);
        else
            hlen += (size_t)snprintf(
                h + hlen, hcap - hlen,
                "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                i ? "," : "", t[i].name, dtype, (long long)t[i].shape[0], off, off + numel * esz);
        off += numel * esz;
    }
    hlen += (size_t)snprintf(h + hlen, hcap - hlen, "}");
    while ((hlen + 8) % 8)
        h[hlen++] = ' ';
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t hl = hlen;
    int rc = !f || fwrite(&hl, 8, 1, f) != 1 || fwrite(h, 1, hlen, f) != hlen;
    size_t buf_n = (size_t)1 << 22;
    uint8_t *buf = malloc(buf_n * 4);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; !rc && buf && i < n; i++) {
        size_t numel = (size_t)t[i].shape[0] * (size_t)(t[i].n_dims == 2 ? t[i].shape[1] : 1);
        /* HF layouts: Conv1D (gpt2) is [in, out], nn.Linear [out, in] */
        double fan_in = t[i].n_dims == 2
                            ? (double)(!strcmp(s->arch, "gpt2") ? t[i].shape[0] : t[i].shape[1])
                            : 1;
        float spread = t[i].n_dims == 2 ? (float)(1.0 / sqrt(fan_in)) : 0.02f;
        for (size_t done = 0; !rc && done < numel;) {
            size_t k = numel - done < buf_n ? numel - done : buf_n;
            for (size_t j = 0; j < k; j++) {
                float v = t[i].norm
                              ? 1.0f
                              : spread * ((float)(rng_next(&seed) >> 40) / (float)(1 << 24) * 2.0f -
                                          1.0f);
                if (esz == 4)
                    memcpy(buf + 4 * j, &v, 4);
                else {
                    uint16_t b = !strcmp(dtype, "F16") ? pq_f32_to_f16(v) : pq_f32_to_bf16(v);
                    memcpy(buf + 2 * j, &b, 2);
                }
            }
            rc = fwrite(buf, (size_t)esz, k, f) != k;
            done += k;
        }
    }
    rc |= !buf;
    if (f)
        rc |= fclose(f) != 0;
    free(buf);
    free(h);
    free(t);
    return rc ? -1 : 0;
}

/* The model directory of a named shape in dtype, written when it is not there yet. */
static int shape_dir(const char *models, const char *name, const char *dtype, char *dir, size_t cap)
{
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name))
            s = &shapes[i];
    if (!s) { /* a model directory */
        snprintf(dir, cap, "%s", name);
        return 0;
    }
    snprintf(dir, cap, "%s/%s-%s", models, name, dtype);
    char done[4200];
    snprintf(done, sizeof done, "%s/.complete", dir);
    struct stat st;
    if (stat(done, &st) == 0)
        return 0;
    fprintf(stderr, "bench: writing %s (random weights, once)\n", dir);
    mkdir(models, 0777);
    mkdir(dir, 0777);
    if (write_config(s, dir) || write_weights(s, dtype, dir))
        return -1;
    FILE *f = fopen(done, "w");
    return f ? fclose(f) : -1;
}

/* ---- the text and the timing ------------------------------------------------------------- */

typedef struct {
    int32_t *tokens;
    int *len;
    int n;
    size_t total;
} sentences;

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* FLORES-like: lengths log-uniform in [20, 400] tokens, sorted (every one seq_len tokens
 * long when seq_len > 0); ids spread over the vocabulary */
static int make_sentences(sentences *s, size_t want, int vocab, int ctx, int seq_len)
{
    uint64_t seed = 12345;
    s->n = 0;
    s->total = 0;
    s->len = NULL;
    s->tokens = NULL;
    int cap = 0;
    while (s->total < want) {
        double u = (double)(rng_next(&seed) >> 11) / 9007199254740992.0;
        int L = seq_len > 0 ? seq_len : (int)lround(20.0 * pow(20.0, u));
        if (L > ctx)
            L = ctx;
        if (s->n == cap) {
            cap = cap ? 2 * cap : 64;
            int *nl = realloc(s->len, sizeof(int) * (size_t)cap);
            if (!nl)
                return -1;
            s->len = nl;
        }
        s->len[s->n++] = L;
        s->total += (size_t)L;
    }
    qsort(s->len, (size_t)s->n, sizeof(int), cmp_int);
    s->tokens = malloc(sizeof(int32_t) * s->total);
    if (!s->tokens)
        return -1;
    for (size_t i = 0; i < s->total; i++)
        s->tokens[i] = (int32_t)(rng_next(&seed) % (uint64_t)vocab);
    return 0;
}

/* One pass over every sentence in packed batches; seconds, or -1 */
static double one_pass(const pq_model *m, pq_ops *ops, pq_acts *acts, const sentences *s, int batch,
                       float *logits, polyq_err *err)
{
    int starts[4097];
    double t0 = now();
    size_t pos = 0;
    for (int i = 0; i < s->n;) {
        int ns = 0, M = 0;
        starts[0] = 0;
        while (i < s->n && ns < 4096 && (ns == 0 || M + s->len[i] <= batch)) {
            M += s->len[i++];
            starts[++ns] = M;
        }
        if (pq_model_forward(m, ops, acts, s->tokens + pos, starts, ns, logits, err))
            return -1;
        pos += (size_t)M;
    }
    return now() - t0;
}

static double vm_hwm_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb / 1024;
}

/* Matrix-product FLOPs of one pass: every linear (2 N K per token) and, per sentence and
 * layer, the two attention products over the causal triangle (2 T (T+1) / 2 D per head each). */
static double pass_flops(const pq_model *m, const sentences *s)
{
    double lin = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const pq_linear *L[PQ_N_LAYER_LINEARS] = PQ_LAYER_LINEARS(&m->layers[l]);
        for (int i = 0; i < PQ_N_LAYER_LINEARS; i++)
            lin += 2.0 * L[i]->n_out * (double)L[i]->n_in;
    }
    lin += 2.0 * m->lm_head.n_out * (double)m->lm_head.n_in;
    double att = 0;
    for (int i = 0; i < s->n; i++)
        att += 2.0 * 2.0 * (double)s->len[i] * (s->len[i] + 1) / 2.0 * m->cfg.n_embd;
    return lin * (double)s->total + att * m->cfg.n_layer;
}

static double median3(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* tokens/s of reps passes (median, min, max, and the median tokens per CPU-second); -1 on
 * failure */
static int timed(const pq_model *m, int threads, int reference, const sentences *s, int batch,
                 int reps, double out[4], polyq_err *err)
{
    pq_ops ops;
    pq_acts acts;
    int max_t = batch > m->cfg.n_ctx ? batch : m->cfg.n_ctx;
    int K = m->cfg.n_inner > m->cfg.n_embd ? m->cfg.n_inner : m->cfg.n_embd;
    if (pq_ops_init(&ops, threads, K, max_t) || pq_acts_init(&acts, &m->cfg, batch)) {
        pq_fail(err, POLYQ_NOMEM, "out of memory for the batch buffers");
        return -1;
    }
    ops.reference = reference;
    float *logits = pq_alloc_array((size_t)batch * (size_t)pq_model_out_dim(m), sizeof(float));
    double v[16] = {0}, cpu[16] = {0};
    int rc = logits ? 0 : -1;
    if (!reps)
        reps = 1;
    for (int r = 0; r < reps && r < 16 && !rc; r++) {
        double c0 = cpu_now();
        double dt = one_pass(m, &ops, &acts, s, batch, logits, err);
        double dc = cpu_now() - c0;
        if (dt <= 0 || dc <= 0)
            rc = -1;
        v[r] = (double)s->total / dt;
        cpu[r] = (double)s->total / dc;
    }
    if (!rc) {
        out[1] = out[2] = v[0];
        for (int r = 1; r < reps; r++)
            out[1] = fmin(out[1], v[r]), out[2] = fmax(out[2], v[r]);
        out[0] = median3(v, reps);
        out[3] = median3(cpu, reps);
    }
    free(logits);
    pq_acts_free(&acts);
    pq_ops_free(&ops);
    return rc;
}

int main(int argc, char **argv)
{
    const char *shape_name = "gpt2-124m", *dtype = "F32", *quant = "fp32",
               *models = "build/bench-models";
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 3, batch = 512, one = 0, header = 0,
        seq_len = 0;
    long tokens = 0, ref_tokens = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--one-thread"))
            one = 1;
        else if (!strcmp(a, "--header"))
            header = 1;
        else if (v && !strcmp(a, "--shape"))
            shape_name = v, i++;
        else if (v && !strcmp(a, "--dtype"))
            dtype = v, i++;
        else if (v && !strcmp(a, "--quant"))
            quant = v, i++;
        else if (v && !strcmp(a, "--models"))
            models = v, i++;
        else if (v && !strcmp(a, "--threads"))
            threads = atoi(v), i++;
        else if (v && !strcmp(a, "--tokens"))
            tokens = atol(v), i++;
        else if (v && !strcmp(a, "--batch-tokens"))
            batch = atoi(v), i++;
        else if (v && !strcmp(a, "--reps"))
            reps = atoi(v), i++;
        else if (v && !strcmp(a, "--seq-len"))
            seq_len = atoi(v), i++;
        else if (v && !strcmp(a, "--ref-tokens"))
            ref_tokens = atol(v), i++;
        else {
            fprintf(stderr,
                    "bench: unknown or incomplete option \"%s\" (see the comment at the top "
                    "of bench/bench.c)\n",
                    a);
            return 2;
        }
    }
    if (strcmp(dtype, "F32") && strcmp(dtype, "F16") && strcmp(dtype, "BF16")) {
        fprintf(stderr, "bench: --dtype \"%s\": F32, F16 or BF16\n", dtype);
        return 2;
    }
    if (threads < 1 || threads > 256 || reps < 1 || reps > 16 || batch < 1 || seq_len < 0) {
        fprintf(stderr, "bench: --threads (1..256), --reps (1..16), --batch-tokens and --seq-len "
                        "must be positive\n");
        return 2;
    }
    machine_peak pk = find_peak(threads);
    if (header) {
        if (pk.peak <= 0)
            printf("peak FP32 FMA rate: not measured (no AVX2+FMA)\n");
        else if (pk.hz > 0)
            printf("peak FP32 FMA rate: %.0f GFLOP/s measured (%d thread(s) at once, each in 12 "
                   "independent chains of %d-lane %s FMAs: %.2f FMAs per cycle of the %.2f GHz "
                   "the OS reports, which a boost clock exceeds)\n",
                   pk.peak / 1e9, threads, pk.lanes, pk.isa, pk.fma_per_cycle, pk.hz / 1e9);
        else
            printf("peak FP32 FMA rate: %.0f GFLOP/s measured (%d thread(s) at once, each in 12 "
                   "independent chains of %d-lane %s FMAs; the OS reports no clock)\n",
                   pk.peak / 1e9, threads, pk.lanes, pk.isa);
        printf("| model shape (random weights) | format | bits/weight | tokens/s (median of %d) | "
               "range | tokens per CPU-second | matmul share of FP32 peak | 1 thread (2-thread "
               "speed-up) | fast / scalar reference | peak RSS |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n",
               reps);
        return 0;
    }
    char dir[4096];
    polyq_err err = {0};
    pq_model *base = NULL, *m = NULL;
    pq_qspec spec;
    if (shape_dir(models, shape_name, dtype, dir, sizeof dir)) {
        fprintf(stderr, "bench: cannot write the %s model under %s\n", shape_name, models);
        return 1;
    }
    if (pq_qspec_parse(quant, &spec, &err) ||
        (pq_is_gguf_file(dir) ? pq_model_open_gguf(&base, dir, &err)
                              : pq_model_open_dir(&base, dir, &err)) ||
        pq_model_quantize(&m, base, &spec, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    if (!tokens) /* about half a minute a pass at most on a 2-core machine */
        tokens = base->n_params > 3000000000 ? 512 : base->n_params > 500000000 ? 1024 : 4096;
    sentences s;
    if (seq_len > base->cfg.n_ctx) {
        fprintf(stderr, "bench: --seq-len %d is beyond the model's context of %d\n", seq_len,
                base->cfg.n_ctx);
        return 2;
    }
    if (seq_len > batch)
        batch = seq_len;
    if (make_sentences(&s, (size_t)tokens, base->cfg.n_vocab, base->cfg.n_ctx, seq_len)) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    double fast[4], fast1[4] = {0};
    if (timed(m, threads, 0, &s, batch, reps, fast, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double rss = vm_hwm_mib(), flops = pass_flops(m, &s) / (double)s.total;
    if (one && threads > 1 && timed(m, 1, 0, &s, batch, reps, fast1, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    /* the scalar reference against the fast kernels, both on 1 thread, on the first sentences
     * only (the reference is slow) */
    double ratio = 0;
    if (ref_tokens > 0 && base->n_params < 500000000) {
        sentences r = s;
        r.n = 0;
        r.total = 0;
        while (r.n < s.n && r.total < (size_t)ref_tokens)
            r.total += (size_t)s.len[r.n++];
        double rf[4], ff[4];
        if (!timed(m, 1, 1, &r, batch, 1, rf, &err) && !timed(m, 1, 0, &r, batch, 1, ff, &err))
            ratio = ff[0] / rf[0];
    }
    char fmt[64], one_col[64], ref_col[32], rss_col[32], peak_col[32];
    bool gguf = pq_is_gguf_file(dir);
    if (spec.none && gguf)
        snprintf(fmt, sizeof fmt, "the file's (%s)", base->dtype);
    else if (spec.none)
        snprintf(fmt, sizeof fmt, "%s", dtype);
    else
        snprintf(fmt, sizeof fmt, "%s%s%s", quant, strcmp(dtype, "F32") ? " from " : "",
                 strcmp(dtype, "F32") ? dtype : "");
    if (fast1[0] > 0)
        snprintf(one_col, sizeof one_col, "%.0f (%.2fx)", fast1[0], fast[0] / fast1[0]);
    else
        snprintf(one_col, sizeof one_col, "-");
    if (ratio > 0)
        snprintf(ref_col, sizeof ref_col, "%.0fx", ratio);
    else
        snprintf(ref_col, sizeof ref_col, "-");
    if (rss >= 1024)
        snprintf(rss_col, sizeof rss_col, "%.2f GiB", rss / 1024);
    else
        snprintf(rss_col, sizeof rss_col, "%.0f MiB", rss);
    char shape_col[512];
    if (seq_len > 0)
        snprintf(shape_col, sizeof shape_col, "%s, %d-token sequences", shape_name, seq_len);
    else
        snprintf(shape_col, sizeof shape_col, "%s", shape_name);
    if (pk.peak > 0)
        snprintf(peak_col, sizeof peak_col, "%.2f", fast[0] * flops / pk.peak);
    else
        snprintf(peak_col, sizeof peak_col, "-");
    char bits_col[32];
    if (spec.none && gguf)
        snprintf(bits_col, sizeof bits_col, "-");
    else
        snprintf(bits_col, sizeof bits_col, "%.2f",
                 spec.none ? (strcmp(dtype, "F32") ? 16.0 : 32.0) : pq_model_bits_per_weight(m));
    printf("| %s | %s | %s | %.0f | %.0f-%.0f | %.0f | %s | %s | %s | %s |\n", shape_col, fmt,
           bits_col, fast[0], fast[1], fast[2], fast[3], peak_col, one_col, ref_col, rss_col);
    free(s.tokens);
    free(s.len);
    pq_model_free(m);
    pq_model_free(base);
    return 0;
}
