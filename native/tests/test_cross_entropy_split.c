/*
 * test_cross_entropy_split.c — the vocabulary-split cross-entropy (nsm_cross_entropy_partial_*,
 * _merge, _finish_*; docs/derivation.md §7): rows split into random shards of columns (empty and
 * single-column shards, boundaries anywhere, the label in any shard), partial statistics merged in
 * random tree shapes, then each shard finished; compared with a float64 reference of the whole
 * row and with the unsplit nsm_cross_entropy_* call, for hard labels and soft targets, every
 * reduction, weights, ignore_index, label smoothing, grad_scale and grad_output. The same split and
 * order give the same bits (and every shard's finish the same loss); a dominant class split in two
 * keeps its tiny loss; bad input is refused with nothing written.
 */
#include "harness_support.h"
#include "test_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_ROWS 7
#define MAX_SHARDS 6

static nsm_status partial(dtype t, int soft, int64_t rows, int64_t cols, int64_t first, int64_t vocab,
                          const void* z, int64_t ld, const int64_t* labels, const void* target,
                          int64_t ld_target, const void* weight, const nsm_cross_entropy_options* o,
                          nsm_cross_entropy_stats* stats)
{
    if (soft)
        return t == F32 ? nsm_cross_entropy_partial_soft_f32(rows, cols, first, vocab, (const float*)z, ld,
                                                             (const float*)target, ld_target, (const float*)weight, o, stats)
                        : nsm_cross_entropy_partial_soft_f64(rows, cols, first, vocab, (const double*)z, ld,
                                                             (const double*)target, ld_target, (const double*)weight, o, stats);
    return t == F32 ? nsm_cross_entropy_partial_f32(rows, cols, first, vocab, (const float*)z, ld, labels,
                                                    (const float*)weight, o, stats)
                    : nsm_cross_entropy_partial_f64(rows, cols, first, vocab, (const double*)z, ld, labels,
                                                    (const double*)weight, o, stats);
}

static nsm_status finish(dtype t, int soft, int64_t rows, int64_t cols, int64_t first, int64_t vocab,
                         const void* z, int64_t ld, const int64_t* labels, const void* target,
                         int64_t ld_target, const void* weight, const nsm_cross_entropy_stats* stats,
                         const nsm_cross_entropy_options* o, void* loss, void* grad, int64_t ld_grad)
{
    if (soft)
        return t == F32 ? nsm_cross_entropy_finish_soft_f32(rows, cols, first, vocab, (const float*)z, ld,
                                                            (const float*)target, ld_target, (const float*)weight,
                                                            stats, o, (float*)loss, (float*)grad, ld_grad)
                        : nsm_cross_entropy_finish_soft_f64(rows, cols, first, vocab, (const double*)z, ld,
                                                            (const double*)target, ld_target, (const double*)weight,
                                                            stats, o, (double*)loss, (double*)grad, ld_grad);
    return t == F32 ? nsm_cross_entropy_finish_f32(rows, cols, first, vocab, (const float*)z, ld, labels,
                                                   (const float*)weight, stats, o, (float*)loss, (float*)grad, ld_grad)
                    : nsm_cross_entropy_finish_f64(rows, cols, first, vocab, (const double*)z, ld, labels,
                                                   (const double*)weight, stats, o, (double*)loss, (double*)grad, ld_grad);
}

/* One split case: the whole [rows × vocab] problem in dense arrays of the dtype. */
typedef struct problem {
    dtype t;
    int soft;
    int64_t rows, vocab;
    void *z, *target, *weight, *grad_output; /* weight, grad_output may be NULL */
    int64_t labels[SPLIT_ROWS];
    nsm_cross_entropy_options o;
    int ref_done;
    double* ref_grad; /* [rows × vocab]: the reference gradient, formed on the first split (it does not depend on the split) */
} problem;

/* Shard k: columns [bounds[k], bounds[k + 1]); its logits, targets and weights copied into arrays
 * with leading dimension cols + pad (the shard holds only its own columns). */
typedef struct shard {
    int64_t first, cols, ld;
    void *z, *target, *weight, *grad;
    nsm_cross_entropy_stats stats[SPLIT_ROWS];
} shard;

static void* copy_columns(dtype t, const void* src, int64_t rows, int64_t src_ld, int64_t first, int64_t cols, int64_t ld)
{
    size_t size = dtype_size(t);
    unsigned char* out = calloc((size_t)(rows * ld + 1), size);
    for (int64_t r = 0; r < rows; ++r)
        memcpy(out + (size_t)(r * ld) * size, (const unsigned char*)src + (size_t)(r * src_ld + first) * size, (size_t)cols * size);
    return out;
}

static void shard_make(const problem* p, shard* s, int64_t first, int64_t cols, int64_t pad)
{
    s->first = first;
    s->cols = cols;
    s->ld = cols + pad;
    s->z = copy_columns(p->t, p->z, p->rows, p->vocab, first, cols, s->ld);
    s->target = p->soft ? copy_columns(p->t, p->target, p->rows, p->vocab, first, cols, s->ld) : NULL;
    s->weight = p->weight ? copy_columns(p->t, p->weight, 1, p->vocab, first, cols, cols) : NULL;
    s->grad = calloc((size_t)(p->rows * s->ld + 1), dtype_size(p->t));
}

static void shard_free(shard* s)
{
    free(s->z);
    free(s->target);
    free(s->weight);
    free(s->grad);
}

/* Merges stats[0..n) in a random tree shape (each step merges two neighbours, in place into the
 * left one), so every shape of parenthesisation is reached. Returns the merged statistics in out. */
static void merge_tree(rng* g, nsm_cross_entropy_stats (*stats)[SPLIT_ROWS], int n, int64_t rows,
                       nsm_cross_entropy_stats* out, char* shape, size_t shape_size)
{
    nsm_cross_entropy_stats work[MAX_SHARDS][SPLIT_ROWS];
    memcpy(work, stats, sizeof(nsm_cross_entropy_stats) * SPLIT_ROWS * (size_t)n);
    shape[0] = 0;
    while (n > 1) {
        int i = (int)rng_below(g, n - 1);
        size_t used = strlen(shape);
        snprintf(shape + used, shape_size - used, "%d ", i);
        check(nsm_cross_entropy_merge(rows, work[i], work[i + 1], work[i]) == NSM_OK, "%s: merge: %s", context(), nsm_last_error());
        memmove(&work[i + 1], &work[i + 2], sizeof(work[0]) * (size_t)(n - i - 2));
        --n;
    }
    memcpy(out, work[0], sizeof(nsm_cross_entropy_stats) * SPLIT_ROWS);
}

/* The weighted, smoothed target y of row r over the whole vocabulary. */
static void target_row(const problem* p, int64_t r, double* y)
{
    double eps = p->o.label_smoothing;
    for (int64_t j = 0; j < p->vocab; ++j) {
        double w = p->weight ? get_element(p->t, p->weight, j) : 1.0;
        if (p->soft)
            y[j] = ((1 - eps) * get_element(p->t, p->target, r * p->vocab + j) + eps / (double)p->vocab) * w;
        else
            y[j] = p->labels[r] == p->o.ignore_index ? 0.0
                                                      : ((1 - eps) * (j == p->labels[r]) + eps / (double)p->vocab) * w;
    }
}

static void run_split(problem* p, rng* g, int shards)
{
    dtype t = p->t;
    int64_t rows = p->rows, vocab = p->vocab;
    /* Random boundaries (repeats give empty shards). */
    int64_t bounds[MAX_SHARDS + 1];
    bounds[0] = 0;
    bounds[shards] = vocab;
    for (int k = 1; k < shards; ++k) bounds[k] = rng_below(g, vocab + 1);
    for (int k = 1; k < shards; ++k) /* sort */
        for (int i = 1; i < shards - 1; ++i)
            if (bounds[i] > bounds[i + 1]) { int64_t x = bounds[i]; bounds[i] = bounds[i + 1]; bounds[i + 1] = x; }
    char where[160];
    snprintf(where, sizeof where, "%s", context());
    shard s[MAX_SHARDS];
    nsm_cross_entropy_stats all[MAX_SHARDS][SPLIT_ROWS];
    for (int k = 0; k < shards; ++k) {
        shard_make(p, &s[k], bounds[k], bounds[k + 1] - bounds[k], rng_below(g, 3));
        nsm_status st = partial(t, p->soft, rows, s[k].cols, s[k].first, vocab, s[k].z, s[k].ld, p->labels, s[k].target,
                                s[k].ld, s[k].weight, &p->o, s[k].stats);
        check(st == NSM_OK, "%s shard %d [%lld, %lld): partial: %s", where, k, (long long)bounds[k], (long long)bounds[k + 1], nsm_last_error());
        memcpy(all[k], s[k].stats, sizeof all[k]);
    }
    nsm_cross_entropy_stats merged[SPLIT_ROWS], again[SPLIT_ROWS];
    char shape[64], shape_again[64];
    rng g2 = *g;
    merge_tree(g, all, shards, rows, merged, shape, sizeof shape);
    merge_tree(&g2, all, shards, rows, again, shape_again, sizeof shape_again);
    check(memcmp(merged, again, sizeof merged) == 0, "%s: the same merge order gave other bits", where);

    /* The unsplit call and the float64 reference. */
    int none = p->o.reduction == NSM_REDUCTION_NONE;
    int64_t loss_count = none ? rows : 1;
    double unsplit_loss[SPLIT_ROWS], first_loss[SPLIT_ROWS];
    void* unsplit_grad = calloc((size_t)(rows * vocab), dtype_size(t));
    void* loss_buf = calloc(SPLIT_ROWS, 8);
    nsm_status st = p->soft ? call_cross_entropy_soft(t, rows, vocab, p->z, vocab, p->target, vocab, p->weight, &p->o, loss_buf, unsplit_grad, vocab)
                            : call_cross_entropy(t, rows, vocab, p->z, vocab, p->labels, p->weight, &p->o, loss_buf, unsplit_grad, vocab);
    check(st == NSM_OK, "%s: unsplit call: %s", where, nsm_last_error());
    for (int64_t i = 0; i < loss_count; ++i) unsplit_loss[i] = get_element(t, loss_buf, i);

    double unit = accuracy_unit(t);
    double z[4096], y[4096];
    double divisor = 0, total = 0, total_tol = 0;
    double row_loss[SPLIT_ROWS], row_tol[SPLIT_ROWS];
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < vocab; ++j) z[j] = get_element(t, p->z, r * vocab + j);
        target_row(p, r, y);
        double lse = ref_logsumexp(z, vocab), loss = 0, size = 0;
        for (int64_t j = 0; j < vocab; ++j)
            if (y[j] != 0) { loss += y[j] * (lse - z[j]); size += fabs(y[j]) * (1 + fabs(lse - z[j])); }
        int ignored = !p->soft && p->labels[r] == p->o.ignore_index;
        if (!ignored) divisor += p->soft ? 1.0 : (p->weight ? get_element(t, p->weight, p->labels[r]) : 1.0);
        row_loss[r] = ignored ? 0.0 : loss;
        row_tol[r] = 2 * unit * size; /* the unsplit call's bound */
        total += row_loss[r];
        total_tol += row_tol[r];
    }
    if (p->soft) divisor = (double)rows;
    double reduced = p->o.reduction == NSM_REDUCTION_SUM ? total : total / divisor;
    double reduced_tol = p->o.reduction == NSM_REDUCTION_SUM ? total_tol : total_tol / fabs(divisor);

    /* Every shard's finish, twice (bitwise the same), and in place once. */
    for (int k = 0; k < shards; ++k) {
        void* loss_k = calloc(SPLIT_ROWS, 8);
        st = finish(t, p->soft, rows, s[k].cols, s[k].first, vocab, s[k].z, s[k].ld, p->labels, s[k].target, s[k].ld,
                    s[k].weight, merged, &p->o, loss_k, s[k].cols > 0 ? s[k].grad : NULL, s[k].ld);
        check(st == NSM_OK, "%s shard %d: finish: %s", where, k, nsm_last_error());
        for (int64_t i = 0; i < loss_count; ++i) {
            double got = get_element(t, loss_k, i);
            if (k == 0) {
                first_loss[i] = got;
                double ref = none ? row_loss[i] : reduced, tol = none ? row_tol[i] : reduced_tol;
                check(agrees(t, got, ref, tol), "%s (merges %s): loss[%lld] = %.9g, reference %.9g (tol %.3g)", where, shape,
                      (long long)i, got, ref, tol);
                check(agrees(t, got, unsplit_loss[i], 2 * tol), "%s: loss[%lld] = %.9g, unsplit %.9g", where, (long long)i, got,
                      unsplit_loss[i]);
            } else {
                check(memcmp(&got, &first_loss[i], sizeof got) == 0 || (isnan(got) && isnan(first_loss[i])),
                      "%s: shard %d's loss[%lld] %.17g differs from shard 0's %.17g", where, k, (long long)i, got, first_loss[i]);
            }
        }
        free(loss_k);
        if (s[k].cols == 0) continue;
        /* In place over the logits: the same bits as into grad. */
        void* inplace = copy_columns(t, s[k].z, rows, s[k].ld, 0, s[k].cols, s[k].ld);
        st = finish(t, p->soft, rows, s[k].cols, s[k].first, vocab, inplace, s[k].ld, p->labels, s[k].target, s[k].ld,
                    s[k].weight, merged, &p->o, NULL, inplace, s[k].ld);
        check(st == NSM_OK, "%s shard %d: finish in place: %s", where, k, nsm_last_error());
        int same = 1;
        for (int64_t r = 0; r < rows; ++r)
            same &= memcmp((char*)inplace + (size_t)(r * s[k].ld) * dtype_size(t), (char*)s[k].grad + (size_t)(r * s[k].ld) * dtype_size(t),
                           (size_t)s[k].cols * dtype_size(t)) == 0;
        check(same, "%s shard %d: the in-place gradient differs", where, k);
        free(inplace);
    }

    /* The gradient, against the reference and the unsplit call. */
    double s_mean = p->o.reduction == NSM_REDUCTION_MEAN ? p->o.grad_scale / divisor : p->o.grad_scale;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < vocab; ++j) z[j] = get_element(t, p->z, r * vocab + j);
        target_row(p, r, y);
        double sr = s_mean * (p->grad_output ? get_element(t, p->grad_output, r) : 1.0), y_abs = 0;
        for (int64_t j = 0; j < vocab; ++j) y_abs += fabs(y[j]);
        if (p->ref_grad == NULL) p->ref_grad = calloc((size_t)(rows * vocab), sizeof(double));
        if (!p->ref_done) ref_gradient(z, y, vocab, sr, p->ref_grad + r * vocab);
        const double* ref_grad = p->ref_grad + r * vocab;
        double tol = unit * fabs(sr) * y_abs + flush_floor(t); /* the unsplit call's bound */
        /* One check per row (the first element out of tolerance is named). */
        int64_t bad = -1, bad_unsplit = -1;
        double bad_got = 0, bad_ref = 0, bad_un = 0;
        for (int k = 0; k < shards; ++k)
            for (int64_t c = 0; c < s[k].cols; ++c) {
                int64_t j = s[k].first + c;
                double got = get_element(t, s[k].grad, r * s[k].ld + c);
                double ref = y_abs == 0 ? 0.0 : ref_grad[j];
                double un = get_element(t, unsplit_grad, r * vocab + j);
                if (bad < 0 && !agrees(t, got, ref, tol)) { bad = j; bad_got = got; bad_ref = ref; }
                if (bad_unsplit < 0 && !agrees(t, got, un, 2 * tol)) { bad_unsplit = j; bad_got = got; bad_un = un; }
            }
        check(bad < 0, "%s (merges %s): grad[%lld, %lld] = %.9g, reference %.9g (tol %.3g)", where, shape, (long long)r,
              (long long)bad, bad_got, bad_ref, tol);
        check(bad_unsplit < 0, "%s: grad[%lld, %lld] = %.9g, unsplit %.9g", where, (long long)r, (long long)bad_unsplit, bad_got, bad_un);
    }
    p->ref_done = 1;
    free(unsplit_grad);
    free(loss_buf);
    for (int k = 0; k < shards; ++k) shard_free(&s[k]);
}

static void random_cases(void)
{
    static const int64_t vocabs[] = {1, 2, 3, 7, 16, 17, 40, 100, 300};
    long cases = 0;
    for (int ti = 0; ti < 2; ++ti)
        for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; ++vi)
            for (int soft = 0; soft < 2; ++soft)
                for (int variant = 0; variant < 6; ++variant) {
                    dtype t = ti ? F64 : F32;
                    rng g = rng_new(case_seed((uint64_t)ti, (uint64_t)vi, (uint64_t)soft, (uint64_t)variant));
                    problem p;
                    memset(&p, 0, sizeof p);
                    p.t = t;
                    p.soft = soft;
                    p.rows = SPLIT_ROWS;
                    p.vocab = vocabs[vi];
                    p.o = (nsm_cross_entropy_options)NSM_CROSS_ENTROPY_OPTIONS_INIT;
                    p.o.reduction = (nsm_reduction)(variant % 3);
                    p.o.label_smoothing = variant >= 3 ? 0.15 : 0.0;
                    p.o.grad_scale = variant == 4 ? -2.5 : 1.0;
                    if (variant == 5) p.o.ignore_index = 1;
                    size_t size = dtype_size(t);
                    p.z = calloc((size_t)(p.rows * p.vocab), size);
                    p.target = calloc((size_t)(p.rows * p.vocab), size);
                    for (int64_t i = 0; i < p.rows * p.vocab; ++i) {
                        set_element(t, p.z, i, rng_uniform(&g, -6, 6));
                        set_element(t, p.target, i, rng_below(&g, 3) == 0 ? 0.0 : rng_uniform(&g, 0, 1));
                    }
                    /* Row 1: a dominant class; row 2: soft targets all zero (soft) / a −inf logit. */
                    set_element(t, p.z, 1 * p.vocab + (p.vocab - 1) / 2, t == F32 ? 20.0 : 40.0);
                    if (p.vocab > 1) set_element(t, p.z, 2 * p.vocab + p.vocab - 1, -INFINITY);
                    if (soft)
                        for (int64_t j = 0; j < p.vocab; ++j) set_element(t, p.target, 2 * p.vocab + j, 0.0);
                    for (int64_t r = 0; r < p.rows; ++r) p.labels[r] = rng_below(&g, p.vocab);
                    if (p.vocab > 1) p.labels[2] = 0;               /* not at the −inf logit */
                    p.labels[3] = p.o.ignore_index;                  /* an ignored row */
                    p.labels[1] = (p.vocab - 1) / 2;                 /* the dominant class */
                    if (variant % 2 == 1) {
                        p.weight = calloc((size_t)p.vocab, size);
                        for (int64_t j = 0; j < p.vocab; ++j) set_element(t, p.weight, j, rng_uniform(&g, 0.25, 2));
                    }
                    if (p.o.reduction == NSM_REDUCTION_NONE && variant == 3) {
                        p.grad_output = calloc(SPLIT_ROWS, size);
                        for (int64_t r = 0; r < p.rows; ++r) set_element(t, p.grad_output, r, rng_uniform(&g, -2, 2));
                        p.o.grad_output = p.grad_output;
                    }
                    for (int shards = 1; shards <= MAX_SHARDS; ++shards) {
                        set_context("split %s %s vocab %lld variant %d (reduction %d, eps %g, weights %d) shards %d",
                                    t == F32 ? "f32" : "f64", soft ? "soft" : "hard", (long long)p.vocab, variant,
                                    (int)p.o.reduction, p.o.label_smoothing, p.weight != NULL, shards);
                        run_split(&p, &g, shards);
                        ++cases;
                    }
                    free(p.z);
                    free(p.target);
                    free(p.weight);
                    free(p.grad_output);
                    free(p.ref_grad);
                }
    check(cases > 0, "split cases ran");
}

/* [20, 0] split into [20] and [0], label 0: the loss log1p(e^−20) = 2.0611537e-9 keeps its few
 * ulp (a plain sum of exponentials in float32 would give 0). */
static void dominant_split(void)
{
    set_context("dominant class split in two");
    float z[2] = {20.0f, 0.0f};
    int64_t label = 0;
    nsm_cross_entropy_options o = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    nsm_cross_entropy_stats a, b;
    check(nsm_cross_entropy_partial_f32(1, 1, 0, 2, &z[0], 1, &label, NULL, &o, &a) == NSM_OK, "partial a");
    check(nsm_cross_entropy_partial_f32(1, 1, 1, 2, &z[1], 1, &label, NULL, &o, &b) == NSM_OK, "partial b");
    for (int order = 0; order < 2; ++order) {
        nsm_cross_entropy_stats m;
        check(nsm_cross_entropy_merge(1, order ? &b : &a, order ? &a : &b, &m) == NSM_OK, "merge");
        float loss = 0, grad[2] = {0, 0};
        check(nsm_cross_entropy_finish_f32(1, 1, 0, 2, &z[0], 1, &label, NULL, &m, &o, &loss, &grad[0], 1) == NSM_OK, "finish a");
        check(nsm_cross_entropy_finish_f32(1, 1, 1, 2, &z[1], 1, &label, NULL, &m, &o, NULL, &grad[1], 1) == NSM_OK, "finish b");
        double exact = log1p(exp(-20.0));
        check(ulp_error(F32, loss, exact) <= DOMINANT_ULPS, "order %d: loss %.9g, exact %.9g", order, (double)loss, exact);
        double o1 = exp(-20.0) / (1 + exp(-20.0));
        check(ulp_error(F32, grad[0], -o1) <= DOMINANT_ULPS, "order %d: grad[0] %.9g, exact %.9g", order, (double)grad[0], -o1);
        check(ulp_error(F32, grad[1], o1) <= DOMINANT_ULPS, "order %d: grad[1] %.9g, exact %.9g", order, (double)grad[1], o1);
    }
}

/* Merging with the identity (an empty shard's statistics) is exact, bit for bit, either side. */
static void identity_merge(void)
{
    set_context("merge with the identity");
    double z[5] = {0.5, -1.25, 3.0, 3.0, -7.0};
    int64_t labels[1] = {2};
    nsm_cross_entropy_options o = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    o.label_smoothing = 0.3;
    nsm_cross_entropy_stats s, empty, m;
    check(nsm_cross_entropy_partial_f64(1, 5, 2, 9, z, 5, labels, NULL, &o, &s) == NSM_OK, "partial: %s", nsm_last_error());
    check(nsm_cross_entropy_partial_f64(1, 0, 9, 9, NULL, 0, labels, NULL, &o, &empty) == NSM_OK, "empty partial: %s", nsm_last_error());
    check(isinf(empty.max) && empty.max < 0 && empty.count_at_max == 0 && empty.sum_below_max == 0 && empty.target_sum == 0 &&
              empty.target_gaps == 0 && empty.label_weight == 0 && empty.has_target == 0,
          "an empty shard's statistics are the identity");
    /* Two logits at the maximum: a total of 2 or more may come unsplit (header: count_at_max). */
    double total = 2 + exp(0.5 - 3.0) + exp(-1.25 - 3.0) + exp(-7.0 - 3.0);
    check(s.count_at_max >= 1 && fabs(s.count_at_max + s.sum_below_max - total) <= 1e-15 * total,
          "two logits at the maximum: count_at_max %g + sum_below_max %.17g, exact total %.17g", s.count_at_max,
          s.sum_below_max, total);
    check(nsm_cross_entropy_merge(1, &s, &empty, &m) == NSM_OK && memcmp(&m, &s, sizeof m) == 0, "s ⊕ identity == s");
    check(nsm_cross_entropy_merge(1, &empty, &s, &m) == NSM_OK && memcmp(&m, &s, sizeof m) == 0, "identity ⊕ s == s");
    m = s;
    check(nsm_cross_entropy_merge(1, &m, &empty, &m) == NSM_OK && memcmp(&m, &s, sizeof m) == 0, "in place: merged == a");
    check(sizeof(nsm_cross_entropy_stats) == 56, "sizeof(nsm_cross_entropy_stats) is 56");
}

/* Bad input: the status, and nothing written. */
static void errors(void)
{
    set_context("split errors");
    float z[6] = {1, 2, 3, 4, 5, 6};
    int64_t labels[2] = {0, 9};
    nsm_cross_entropy_options o = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    nsm_cross_entropy_stats stats[2], keep[2];
    memset(stats, 0x5a, sizeof stats);
    memcpy(keep, stats, sizeof stats);
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 9, z, 3, labels, NULL, &o, stats) == NSM_ERR_LABEL_OUT_OF_RANGE,
          "label 9 of a vocabulary of 9: %s", nsm_last_error());
    check(memcmp(stats, keep, sizeof stats) == 0, "nothing written after a label out of range");
    labels[1] = 8;
    check(nsm_cross_entropy_partial_f32(2, 3, 7, 9, z, 3, labels, NULL, &o, stats) == NSM_ERR_INVALID_SHAPE,
          "columns [7, 10) of 9: %s", nsm_last_error());
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 9, z, 3, labels, NULL, &o, (nsm_cross_entropy_stats*)(void*)z) == NSM_ERR_OVERLAP,
          "stats over the logits: %s", nsm_last_error());
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 9, z, 2, labels, NULL, &o, stats) == NSM_ERR_INVALID_LEADING_DIM, "ld_logits 2 < cols 3");
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 0, z, 3, labels, NULL, &o, stats) == NSM_ERR_INVALID_SHAPE, "vocab 0");
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 9, NULL, 3, labels, NULL, &o, stats) == NSM_ERR_NULL_POINTER, "logits NULL");
    check(memcmp(stats, keep, sizeof stats) == 0, "nothing written after the errors");
    check(nsm_cross_entropy_partial_f32(2, 3, 0, 9, z, 3, labels, NULL, &o, stats) == NSM_OK, "a good call: %s", nsm_last_error());
    nsm_cross_entropy_stats three[3], three_keep[3];
    memcpy(three, stats, sizeof stats);
    three[2] = stats[0];
    memcpy(three_keep, three, sizeof three);
    memcpy(keep, stats, sizeof stats);
    check(nsm_cross_entropy_merge(2, three, stats, three + 1) == NSM_ERR_OVERLAP, "merged one row off a: %s", nsm_last_error());
    check(memcmp(three, three_keep, sizeof three) == 0, "nothing written by the refused merge");
    check(nsm_cross_entropy_merge(2, stats, NULL, stats) == NSM_ERR_NULL_POINTER, "b NULL");
    check(nsm_cross_entropy_merge(-1, stats, stats, stats) == NSM_ERR_INVALID_SHAPE, "rows −1");
    check(memcmp(stats, keep, sizeof stats) == 0, "nothing merged after the errors");
    float loss = 7, grad[6];
    memset(grad, 0x5a, sizeof grad);
    float grad_keep[6];
    memcpy(grad_keep, grad, sizeof grad);
    check(nsm_cross_entropy_finish_f32(2, 3, 0, 9, z, 3, labels, NULL, stats, &o, NULL, NULL, 3) == NSM_ERR_NULL_POINTER, "no output");
    check(nsm_cross_entropy_finish_f32(2, 3, 0, 9, z, 3, labels, NULL, NULL, &o, &loss, grad, 3) == NSM_ERR_NULL_POINTER, "stats NULL");
    check(nsm_cross_entropy_finish_f32(2, 3, 0, 9, z, 3, labels, NULL, stats, &o, &loss, z + 1, 3) == NSM_ERR_OVERLAP,
          "grad one element off the logits: %s", nsm_last_error());
    check(nsm_cross_entropy_finish_f32(2, 3, 0, 9, z, 3, labels, NULL, stats, &o, (float*)(void*)stats, grad, 3) == NSM_ERR_OVERLAP,
          "loss over the stats: %s", nsm_last_error());
    o.label_smoothing = 1.5;
    check(nsm_cross_entropy_finish_f32(2, 3, 0, 9, z, 3, labels, NULL, stats, &o, &loss, grad, 3) == NSM_ERR_INVALID_ARGUMENT,
          "label_smoothing 1.5");
    check(loss == 7 && memcmp(grad, grad_keep, sizeof grad) == 0, "nothing written by a failed finish");
}

/* The same split gives the same bits at 1, 2 and 7 threads (rows and shards large enough to use
 * the workers). */
static void thread_counts(void)
{
    set_context("split at 1, 2, 7 threads");
    enum { ROWS = 96, VOCAB = 3000, CUT = 1234 };
    float* z = malloc(sizeof(float) * ROWS * VOCAB);
    int64_t labels[ROWS];
    rng g = rng_new(case_seed(7, 7, 7, 7));
    for (int64_t i = 0; i < (int64_t)ROWS * VOCAB; ++i) z[i] = (float)rng_uniform(&g, -8, 8);
    for (int r = 0; r < ROWS; ++r) labels[r] = rng_below(&g, VOCAB);
    nsm_cross_entropy_options o = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    o.label_smoothing = 0.1;
    int32_t initial = nsm_get_num_threads();
    static const int32_t counts[] = {1, 2, 7};
    nsm_cross_entropy_stats a[ROWS], b[ROWS], first_stats[ROWS];
    float* grad = malloc(sizeof(float) * ROWS * VOCAB);
    float* first_grad = malloc(sizeof(float) * ROWS * VOCAB);
    float loss = 0, first_loss = 0;
    for (int i = 0; i < 3; ++i) {
        check(nsm_set_num_threads(counts[i]) == NSM_OK, "set %d threads", counts[i]);
        /* Shards [0, CUT) and [CUT, VOCAB), both read in place from the whole matrix (ld VOCAB). */
        check(nsm_cross_entropy_partial_f32(ROWS, CUT, 0, VOCAB, z, VOCAB, labels, NULL, &o, a) == NSM_OK, "partial a");
        check(nsm_cross_entropy_partial_f32(ROWS, VOCAB - CUT, CUT, VOCAB, z + CUT, VOCAB, labels, NULL, &o, b) == NSM_OK, "partial b");
        check(nsm_cross_entropy_merge(ROWS, a, b, a) == NSM_OK, "merge");
        check(nsm_cross_entropy_finish_f32(ROWS, CUT, 0, VOCAB, z, VOCAB, labels, NULL, a, &o, &loss, grad, VOCAB) == NSM_OK, "finish a");
        check(nsm_cross_entropy_finish_f32(ROWS, VOCAB - CUT, CUT, VOCAB, z + CUT, VOCAB, labels, NULL, a, &o, NULL, grad + CUT, VOCAB) ==
                  NSM_OK, "finish b");
        if (i == 0) {
            memcpy(first_stats, a, sizeof a);
            memcpy(first_grad, grad, sizeof(float) * ROWS * VOCAB);
            first_loss = loss;
        } else {
            check(memcmp(first_stats, a, sizeof a) == 0, "statistics differ between 1 and %d threads", counts[i]);
            check(memcmp(first_grad, grad, sizeof(float) * ROWS * VOCAB) == 0, "gradient differs between 1 and %d threads", counts[i]);
            check(memcmp(&first_loss, &loss, sizeof loss) == 0, "loss differs between 1 and %d threads", counts[i]);
        }
    }
    nsm_set_num_threads(initial);
    free(z);
    free(grad);
    free(first_grad);
}

void group_cross_entropy_split(void)
{
    thread_counts();
    random_cases();
    dominant_split();
    identity_merge();
    errors();
}
