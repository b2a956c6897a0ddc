/*
 * chunked_ce.c — chunked cross-entropy with the vocabulary-split functions of nativesoftmax.h.
 *
 * The logits of a linear output layer, hidden [N × H] times weight [H × V], are computed in column
 * blocks of 4096 and never held whole: a first pass computes each block, its partial statistics
 * (nsm_cross_entropy_partial_f32) and merges them into the running statistics
 * (nsm_cross_entropy_merge); a second pass computes each block again, finishes its gradient in
 * place over it (nsm_cross_entropy_finish_f32) and accumulates the gradient of the hidden state,
 * grad_hidden += grad_block · weight_blockᵀ. The products use Debian's OpenBLAS (cblas_sgemm)
 * when the build found it, else a plain loop. The program checks the loss, every block's
 * gradient and grad_hidden against the unchunked nsm_cross_entropy_f32 on the full logits, and
 * exits non-zero on a mismatch.
 */
#include <nativesoftmax.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NSM_EXAMPLE_HAVE_CBLAS
#include <cblas.h>
#endif

enum { N = 24, H = 48, V = 20000, BLOCK = 4096 };

/* c[N × cols] (ld ldc) = a[N × H] · b[H × cols] (ld ldb), or += a · bᵀ when accumulating into
 * grad_hidden (see the callers). */
static void logits_block(const float* hidden, const float* weight, int64_t first, int64_t cols, float* block)
{
#ifdef NSM_EXAMPLE_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, (int)cols, H, 1.0f, hidden, H, weight + first, V, 0.0f,
                block, (int)cols);
#else
    for (int i = 0; i < N; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            float s = 0.0f;
            for (int k = 0; k < H; ++k) s += hidden[i * H + k] * weight[(int64_t)k * V + first + j];
            block[i * cols + j] = s;
        }
#endif
}

/* grad_hidden[N × H] += grad_block[N × cols] · weight[:, first : first + cols]ᵀ */
static void accumulate_grad_hidden(const float* grad_block, const float* weight, int64_t first, int64_t cols,
                                   float* grad_hidden)
{
#ifdef NSM_EXAMPLE_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, H, (int)cols, 1.0f, grad_block, (int)cols, weight + first, V,
                1.0f, grad_hidden, H);
#else
    for (int i = 0; i < N; ++i)
        for (int k = 0; k < H; ++k) {
            float s = 0.0f;
            for (int64_t j = 0; j < cols; ++j) s += grad_block[i * cols + j] * weight[(int64_t)k * V + first + j];
            grad_hidden[i * H + k] += s;
        }
#endif
}

static int fail(const char* what, nsm_status s)
{
    fprintf(stderr, "chunked_ce: %s failed: %s: %s\n", what, nsm_status_string(s), nsm_last_error());
    return 1;
}

int main(void)
{
    float* hidden = malloc(sizeof(float) * N * H);
    float* weight = malloc(sizeof(float) * (size_t)H * V);
    int64_t labels[N];
    uint64_t state = 12345;
    for (int i = 0; i < N * H; ++i) hidden[i] = (float)((state = state * 6364136223846793005u + 1442695040888963407u) >> 40) / (1 << 24) - 0.5f;
    for (int64_t i = 0; i < (int64_t)H * V; ++i)
        weight[i] = 0.5f * ((float)((state = state * 6364136223846793005u + 1442695040888963407u) >> 40) / (1 << 24) - 0.5f);
    for (int i = 0; i < N; ++i) labels[i] = (int64_t)((state = state * 6364136223846793005u + 1442695040888963407u) >> 33) % V;
    labels[5] = -100; /* an ignored row */
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.label_smoothing = 0.05;

    /* Pass 1: statistics block by block; only one block of logits at a time. */
    float* block = malloc(sizeof(float) * N * BLOCK);
    nsm_cross_entropy_stats stats[N], part[N];
    nsm_status s;
    for (int64_t first = 0; first < V; first += BLOCK) {
        int64_t cols = V - first < BLOCK ? V - first : BLOCK;
        logits_block(hidden, weight, first, cols, block);
        if ((s = nsm_cross_entropy_partial_f32(N, cols, first, V, block, cols, labels, NULL, &options,
                                               first == 0 ? stats : part)) != NSM_OK)
            return fail("partial", s);
        if (first > 0 && (s = nsm_cross_entropy_merge(N, stats, part, stats)) != NSM_OK) return fail("merge", s);
    }

    /* The unchunked reference: the full logits, the fused call, grad_hidden from the full gradient. */
    float* full = malloc(sizeof(float) * N * V);
    float* full_grad = malloc(sizeof(float) * N * V);
    float* grad_hidden_ref = calloc(N * H, sizeof(float));
    float full_loss = 0.0f;
    logits_block(hidden, weight, 0, V, full);
    if ((s = nsm_cross_entropy_f32(N, V, full, V, labels, NULL, &options, &full_loss, full_grad, V)) != NSM_OK)
        return fail("nsm_cross_entropy_f32", s);
    accumulate_grad_hidden(full_grad, weight, 0, V, grad_hidden_ref);

    /* Pass 2: each block again, its gradient in place, accumulated into grad_hidden. */
    float* grad_hidden = calloc(N * H, sizeof(float));
    float loss = 0.0f;
    double worst_grad = 0.0;
    for (int64_t first = 0; first < V; first += BLOCK) {
        int64_t cols = V - first < BLOCK ? V - first : BLOCK;
        logits_block(hidden, weight, first, cols, block);
        if ((s = nsm_cross_entropy_finish_f32(N, cols, first, V, block, cols, labels, NULL, stats, &options,
                                              first == 0 ? &loss : NULL, block, cols)) != NSM_OK)
            return fail("finish", s);
        for (int i = 0; i < N; ++i)
            for (int64_t j = 0; j < cols; ++j) {
                double d = fabs((double)block[i * cols + j] - full_grad[i * V + first + j]);
                if (d > worst_grad) worst_grad = d;
            }
        accumulate_grad_hidden(block, weight, first, cols, grad_hidden);
    }
    double worst_hidden = 0.0, weight_row = 0.0;
    for (int i = 0; i < N * H; ++i) {
        double d = fabs((double)grad_hidden[i] - grad_hidden_ref[i]);
        if (d > worst_hidden) worst_hidden = d;
    }
    for (int k = 0; k < H; ++k) { /* max_k Σ_j |weight[k, j]| */
        double sum = 0.0;
        for (int64_t j = 0; j < V; ++j) sum += fabs(weight[(int64_t)k * V + j]);
        if (sum > weight_row) weight_row = sum;
    }

    /* Bounds: the header's (loss 2e-6·(1 + |loss|), gradient 1e-6·|s|·Σ|y| with s = 1/(rows not
     * ignored) and Σ|y| = 1), doubled for the two computations compared; a grad_hidden element
     * sums V gradient differences times weights (≤ grad bound · Σ_j |weight[k, j]|), plus the
     * float32 rounding of the two products (V terms; Σ_j |g_ij| ≤ 2·|s| and |weight| ≤ 0.25). */
    double loss_ok = fabs((double)loss - full_loss) <= 4e-6 * (1 + fabs((double)full_loss));
    double grad_bound = 2e-6 / (N - 1);
    double hidden_bound = grad_bound * weight_row + 2 * V * 6e-8 * (0.25 * 2.0 / (N - 1));
    printf("chunked_ce: %d rows, %d classes in blocks of %d (%s): loss %.9g, unchunked %.9g; max |grad difference| %.3g "
           "(bound %.3g); max |grad_hidden difference| %.3g (bound %.3g)\n",
           N, V, BLOCK,
#ifdef NSM_EXAMPLE_HAVE_CBLAS
           "OpenBLAS cblas_sgemm",
#else
           "plain loops",
#endif
           (double)loss, (double)full_loss, worst_grad, grad_bound, worst_hidden, hidden_bound);
    int ok = loss_ok && worst_grad <= grad_bound && worst_hidden <= hidden_bound;
    free(hidden); free(weight); free(block); free(full); free(full_grad); free(grad_hidden_ref); free(grad_hidden);
    if (!ok) {
        fprintf(stderr, "chunked_ce: FAILED: the chunked result differs from the unchunked one\n");
        return 1;
    }
    printf("chunked_ce: OK\n");
    return 0;
}
