/*
 * test_errors.c — bad input (every rejected call returns the documented status, leaves a non-empty
 * nsm_last_error and writes nothing), the library's fixed answers (status strings, versions),
 * rows == 0, per-thread last error and concurrent calls, and the no-variant case.
 */
#define _GNU_SOURCE /* pthread_barrier_t in C99 mode */
#include "harness_support.h"
#include "test_groups.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small problem every bad call is a variation of: 3 rows × 4 classes, ld 5. */
#define R 3
#define C 4
#define LD 5
#define N (R * LD) /* elements in each buffer (a little more than the extent) */

typedef struct buffers {
    dtype t;
    region in, in2, out, out2, loss, weight, target;
    int64_t* labels;
} buffers;

static buffers buffers_new(dtype t)
{
    buffers b;
    b.t = t;
    b.in = region_new(N * dtype_size(t));
    b.in2 = region_new(N * dtype_size(t));
    b.out = region_new(N * dtype_size(t));
    b.out2 = region_new(N * dtype_size(t));
    b.loss = region_new(R * dtype_size(t));
    b.weight = region_new(C * dtype_size(t));
    b.target = region_new(R * sizeof(int64_t));
    b.labels = (int64_t*)b.target.data;
    for (int i = 0; i < N; ++i) {
        set_element(t, b.in.data, i, 0.25 * (i % 7) - 0.5);
        set_element(t, b.in2.data, i, 0.125 * (i % 5));
    }
    for (int j = 0; j < C; ++j) set_element(t, b.weight.data, j, 1.0 + 0.5 * j);
    for (int r = 0; r < R; ++r) b.labels[r] = r % C;
    return b;
}

static void buffers_free(buffers* b)
{
    region_free(&b->in);
    region_free(&b->in2);
    region_free(&b->out);
    region_free(&b->out2);
    region_free(&b->loss);
    region_free(&b->weight);
    region_free(&b->target);
}

/* Snapshots every buffer, so a rejected call can be shown to have written nothing anywhere. */
typedef struct all_bytes {
    snapshot s[7];
} all_bytes;

static all_bytes take_all(const buffers* b)
{
    all_bytes a;
    a.s[0] = snapshot_take(b->in.data, b->in.bytes);
    a.s[1] = snapshot_take(b->in2.data, b->in2.bytes);
    a.s[2] = snapshot_take(b->out.data, b->out.bytes);
    a.s[3] = snapshot_take(b->out2.data, b->out2.bytes);
    a.s[4] = snapshot_take(b->loss.data, b->loss.bytes);
    a.s[5] = snapshot_take(b->weight.data, b->weight.bytes);
    a.s[6] = snapshot_take(b->target.data, b->target.bytes);
    return a;
}

static void expect_rejected(const char* what, nsm_status got, nsm_status want, all_bytes* before)
{
    static const char* names[7] = {"input", "second input", "output", "second output", "loss",
                                   "weight", "target"};
    const char* message = nsm_last_error();
    check(got == want, "%s: status %d (%s), expected %d (%s)", what, (int)got,
          nsm_status_string(got), (int)want, nsm_status_string(want));
    check(message != NULL && message[0] != '\0', "%s: nsm_last_error() is empty after a failure", what);
    for (int i = 0; i < 7; ++i) {
        check(snapshot_unchanged(&before->s[i]), "%s: the %s buffer was written by a rejected call",
              what, names[i]);
        snapshot_free(&before->s[i]);
    }
}

/* Runs `call` (an expression using b) on fresh buffers, after `setup` (a statement that spoils
 * one input), and expects status `want`. */
#define EXPECT_AFTER(setup, what, want, call)                                                      \
    do {                                                                                           \
        buffers b = buffers_new(t);                                                                \
        setup;                                                                                     \
        all_bytes before = take_all(&b);                                                           \
        nsm_status got_ = (call);                                                                  \
        expect_rejected(what, got_, want, &before);                                                \
        buffers_free(&b);                                                                          \
    } while (0)
#define EXPECT(what, want, call) EXPECT_AFTER((void)0, what, want, call)

/* Element offset p + k in the dtype. */
static void* at(dtype t, void* p, int64_t k)
{
    return (unsigned char*)p + (size_t)k * dtype_size(t);
}

static void errors_softmax(dtype t, int log)
{
    set_context("op=%s bad input len=%d rows=%d ld=%d seed=fixed",
                op_name(log ? "log_softmax" : "softmax", t), C, R, LD);
#define SM(rows, cols, in, ld_in, out, ld_out) call_softmax(t, log, rows, cols, in, ld_in, out, ld_out)
    EXPECT("NULL logits", NSM_ERR_NULL_POINTER, SM(R, C, NULL, LD, b.out.data, LD));
    EXPECT("NULL output", NSM_ERR_NULL_POINTER, SM(R, C, b.in.data, LD, NULL, LD));
    EXPECT("rows -1", NSM_ERR_INVALID_SHAPE, SM(-1, C, b.in.data, LD, b.out.data, LD));
    EXPECT("cols 0", NSM_ERR_INVALID_SHAPE, SM(R, 0, b.in.data, LD, b.out.data, LD));
    EXPECT("cols -3", NSM_ERR_INVALID_SHAPE, SM(R, -3, b.in.data, LD, b.out.data, LD));
    EXPECT("rows*ld overflows int64", NSM_ERR_INVALID_SHAPE,
           SM(INT64_MAX, 2, b.in.data, 2, b.out.data, 2));
    EXPECT("one row of INT64_MAX classes", NSM_ERR_INVALID_SHAPE,
           SM(1, INT64_MAX, b.in.data, INT64_MAX, b.out.data, INT64_MAX));
    EXPECT("one row of INT64_MAX/8 classes (no byte-count wrap)", NSM_ERR_INVALID_SHAPE,
           SM(1, INT64_MAX / 8, b.in.data, INT64_MAX / 8, b.out.data, INT64_MAX / 8));
    EXPECT("ld_logits < cols", NSM_ERR_INVALID_LEADING_DIM, SM(R, C, b.in.data, C - 1, b.out.data, LD));
    EXPECT("ld_out < cols", NSM_ERR_INVALID_LEADING_DIM, SM(R, C, b.in.data, LD, b.out.data, C - 1));
    EXPECT("ld_out 0", NSM_ERR_INVALID_LEADING_DIM, SM(R, C, b.in.data, LD, b.out.data, 0));
    EXPECT("output = logits + 1 (partial overlap)", NSM_ERR_OVERLAP,
           SM(R, C, b.in.data, LD, at(t, b.in.data, 1), LD));
    EXPECT("output = logits - 2 (partial overlap)", NSM_ERR_OVERLAP,
           SM(2, C, at(t, b.in.data, 2), LD, b.in.data, LD));
    EXPECT("output = logits with another ld", NSM_ERR_OVERLAP,
           SM(2, C, b.in.data, LD, b.in.data, C));
#undef SM
}

static void errors_backward(dtype t, int log)
{
    set_context("op=%s bad input len=%d rows=%d ld=%d seed=fixed",
                op_name(log ? "log_softmax_backward" : "softmax_backward", t), C, R, LD);
#define BW(rows, cols, g, ldg, o, ldo, d, ldd) call_backward(t, log, rows, cols, g, ldg, o, ldo, d, ldd)
    EXPECT("NULL grad_output", NSM_ERR_NULL_POINTER, BW(R, C, NULL, LD, b.in2.data, LD, b.out.data, LD));
    EXPECT("NULL output", NSM_ERR_NULL_POINTER, BW(R, C, b.in.data, LD, NULL, LD, b.out.data, LD));
    EXPECT("NULL grad_logits", NSM_ERR_NULL_POINTER, BW(R, C, b.in.data, LD, b.in2.data, LD, NULL, LD));
    EXPECT("rows -1", NSM_ERR_INVALID_SHAPE, BW(-1, C, b.in.data, LD, b.in2.data, LD, b.out.data, LD));
    EXPECT("cols 0", NSM_ERR_INVALID_SHAPE, BW(R, 0, b.in.data, LD, b.in2.data, LD, b.out.data, LD));
    EXPECT("ld_grad_output < cols", NSM_ERR_INVALID_LEADING_DIM,
           BW(R, C, b.in.data, C - 1, b.in2.data, LD, b.out.data, LD));
    EXPECT("ld_output < cols", NSM_ERR_INVALID_LEADING_DIM,
           BW(R, C, b.in.data, LD, b.in2.data, C - 1, b.out.data, LD));
    EXPECT("ld_grad_logits < cols", NSM_ERR_INVALID_LEADING_DIM,
           BW(R, C, b.in.data, LD, b.in2.data, LD, b.out.data, C - 1));
    EXPECT("grad_logits = grad_output + 1", NSM_ERR_OVERLAP,
           BW(R, C, b.in.data, LD, b.in2.data, LD, at(t, b.in.data, 1), LD));
    EXPECT("grad_logits = output + 3", NSM_ERR_OVERLAP,
           BW(2, C, b.in.data, LD, b.in2.data, LD, at(t, b.in2.data, 3), LD));
    EXPECT("grad_logits = grad_output with another ld", NSM_ERR_OVERLAP,
           BW(2, C, b.in.data, LD, b.in2.data, LD, b.in.data, C));
#undef BW
}

static void errors_jacobian(dtype t)
{
    set_context("op=%s bad input len=%d rows=%d ld=%d seed=fixed",
                op_name("softmax_jacobian", t), C, R, LD);
    EXPECT("NULL logits", NSM_ERR_NULL_POINTER, call_jacobian(t, 3, NULL, b.out.data, 3));
    EXPECT("NULL jacobian", NSM_ERR_NULL_POINTER, call_jacobian(t, 3, b.in.data, NULL, 3));
    EXPECT("cols 0", NSM_ERR_INVALID_SHAPE, call_jacobian(t, 0, b.in.data, b.out.data, 3));
    EXPECT("cols -1", NSM_ERR_INVALID_SHAPE, call_jacobian(t, -1, b.in.data, b.out.data, 3));
    EXPECT("cols*ld overflows int64", NSM_ERR_INVALID_SHAPE,
           call_jacobian(t, (int64_t)1 << 32, b.in.data, b.out.data, (int64_t)1 << 32));
    EXPECT("ld_jacobian < cols", NSM_ERR_INVALID_LEADING_DIM, call_jacobian(t, 3, b.in.data, b.out.data, 2));
    EXPECT("jacobian overlaps logits", NSM_ERR_OVERLAP,
           call_jacobian(t, 3, at(t, b.in.data, 2), b.in.data, 3));
    EXPECT("jacobian is logits", NSM_ERR_OVERLAP, call_jacobian(t, 3, b.in.data, b.in.data, 3));
}

static nsm_cross_entropy_options options_with(nsm_reduction reduction, double smoothing, double grad_scale)
{
    nsm_cross_entropy_options o = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    o.reduction = reduction;
    o.label_smoothing = smoothing;
    o.grad_scale = grad_scale;
    return o;
}

/* nsm_cross_entropy_options as a newer header might lay it out: this header's struct, then
 * fields this library does not know. */
typedef struct extended_options {
    nsm_cross_entropy_options known;
    unsigned char extra[16];
} extended_options;

/* The offset of extra[i] in the struct: the first unknown byte is at sizeof(nsm_cross_entropy_options). */
#define EXTRA_OFFSET(i) ((int)(offsetof(extended_options, extra) + (i)))

static extended_options extended_options_with(const nsm_cross_entropy_options* known)
{
    extended_options x;
    memset(&x, 0, sizeof x);
    x.known = *known;
    x.known.struct_size = (uint32_t)sizeof x;
    return x;
}

/* The message of the last failure names this offset. */
static void names_offset(int offset)
{
    char text[32];
    snprintf(text, sizeof text, "offset %d", offset);
    check(strstr(nsm_last_error(), text) != NULL, "the message does not name %s: %s", text, nsm_last_error());
}

static void errors_cross_entropy(dtype t)
{
    set_context("op=%s bad input len=%d rows=%d ld=%d seed=fixed",
                op_name("cross_entropy", t), C, R, LD);
    nsm_cross_entropy_options d = NSM_CROSS_ENTROPY_OPTIONS_INIT;
#define CE(rows, cols, logits, ld, target, weight, opt, loss, grad, ldg)                         \
    call_cross_entropy(t, rows, cols, logits, ld, target, weight, opt, loss, grad, ldg)
#define CE_OPT(opt) CE(R, C, b.in.data, LD, b.labels, b.weight.data, opt, b.loss.data, b.out.data, LD)
    EXPECT("NULL logits", NSM_ERR_NULL_POINTER, CE(R, C, NULL, LD, b.labels, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("NULL target", NSM_ERR_NULL_POINTER, CE(R, C, b.in.data, LD, NULL, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("one row of INT64_MAX classes, with weights", NSM_ERR_INVALID_SHAPE,
           CE(1, INT64_MAX, b.in.data, INT64_MAX, b.labels, b.weight.data, &d, b.loss.data, NULL, 0));
    EXPECT("loss and grad NULL", NSM_ERR_NULL_POINTER, CE(R, C, b.in.data, LD, b.labels, NULL, &d, NULL, NULL, LD));
    EXPECT("rows -1", NSM_ERR_INVALID_SHAPE, CE(-1, C, b.in.data, LD, b.labels, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("cols 0", NSM_ERR_INVALID_SHAPE, CE(R, 0, b.in.data, LD, b.labels, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("ld_logits < cols", NSM_ERR_INVALID_LEADING_DIM, CE(R, C, b.in.data, C - 1, b.labels, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("ld_grad < cols", NSM_ERR_INVALID_LEADING_DIM, CE(R, C, b.in.data, LD, b.labels, NULL, &d, b.loss.data, b.out.data, C - 1));

    EXPECT_AFTER(b.labels[R - 1] = C, "label == cols in the last row", NSM_ERR_LABEL_OUT_OF_RANGE,
                 CE_OPT(&d));
    EXPECT_AFTER(b.labels[1] = -1, "label -1 (ignore_index -100)", NSM_ERR_LABEL_OUT_OF_RANGE,
                 CE_OPT(&d));
    d.ignore_index = 2;
    EXPECT_AFTER(b.labels[0] = -100, "label -100 with ignore_index 2", NSM_ERR_LABEL_OUT_OF_RANGE,
                 CE_OPT(&d));
    d.ignore_index = -100;
    d.reduction = NSM_REDUCTION_NONE;
    EXPECT_AFTER(b.labels[2] = INT64_MAX, "huge label, reduction none", NSM_ERR_LABEL_OUT_OF_RANGE,
                 CE_OPT(&d));
    d.reduction = NSM_REDUCTION_MEAN;

    nsm_cross_entropy_options o;
    o = options_with(NSM_REDUCTION_MEAN, -0.1, 1.0);
    EXPECT("label_smoothing -0.1", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(NSM_REDUCTION_MEAN, 1.5, 1.0);
    EXPECT("label_smoothing 1.5", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(NSM_REDUCTION_MEAN, NAN, 1.0);
    EXPECT("label_smoothing NaN", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(3, 0.0, 1.0);
    EXPECT("reduction 3", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(-1, 0.0, 1.0);
    EXPECT("reduction -1", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(NSM_REDUCTION_SUM, 0.0, NAN);
    EXPECT("grad_scale NaN", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(NSM_REDUCTION_SUM, 0.0, INFINITY);
    EXPECT("grad_scale inf", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o = options_with(NSM_REDUCTION_MEAN, 0.0, 1.0);
    o.struct_size = 0;
    EXPECT("options.struct_size 0", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    o.struct_size = 4;
    EXPECT("options.struct_size 4", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    /* A newer header's larger struct: bytes this library does not know must be zero. */
    extended_options x = extended_options_with(&d);
    x.extra[4] = 1;
    EXPECT("options.struct_size sizeof + 16 with the 5th byte past this header's struct set", NSM_ERR_INVALID_ARGUMENT,
           CE_OPT(&x.known));
    names_offset(EXTRA_OFFSET(4));
    x = extended_options_with(&d);
    x.known.struct_size = 4097;
    EXPECT("options.struct_size 4097 (above the 4096 bytes the library reads)", NSM_ERR_INVALID_ARGUMENT,
           CE_OPT(&x.known));
    /* struct_size 36 covers half of grad_output: those bytes are not a field this library reads,
     * so they must be zero (here the pointer's low bytes are not). */
    o = options_with(NSM_REDUCTION_NONE, 0.0, 1.0);
    o.struct_size = 36;
    EXPECT_AFTER(o.grad_output = b.in2.data, "options.struct_size 36 with grad_output's low bytes set",
                 NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    names_offset(32);

    /* grad_output: per-row upstream gradients, for reduction none only. */
    o = options_with(NSM_REDUCTION_MEAN, 0.0, 1.0);
    EXPECT_AFTER(o.grad_output = b.in2.data, "grad_output with reduction mean", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    check(strstr(nsm_last_error(), "grad_output") != NULL, "the message does not name grad_output: %s", nsm_last_error());
    o.reduction = NSM_REDUCTION_SUM;
    EXPECT_AFTER(o.grad_output = b.in2.data, "grad_output with reduction sum", NSM_ERR_INVALID_ARGUMENT, CE_OPT(&o));
    EXPECT_AFTER(o.grad_output = b.in2.data, "grad_output with reduction sum, no rows", NSM_ERR_INVALID_ARGUMENT,
                 CE(0, C, b.in.data, LD, b.labels, NULL, &o, b.loss.data, b.out.data, LD));
    o.reduction = NSM_REDUCTION_NONE;
    EXPECT_AFTER(o.grad_output = b.loss.data, "grad_output is loss", NSM_ERR_OVERLAP, CE_OPT(&o));
    EXPECT_AFTER(o.grad_output = at(t, b.out.data, 2 * LD + 1), "grad_output inside grad", NSM_ERR_OVERLAP, CE_OPT(&o));
    EXPECT_AFTER(o.grad_output = at(t, b.loss.data, 1), "grad_output overlaps loss[1..]", NSM_ERR_OVERLAP,
                 CE(R, C, b.in.data, LD, b.labels, NULL, &o, b.loss.data, NULL, LD));
    EXPECT_AFTER(set_element(t, b.weight.data, 1, NAN), "weight NaN", NSM_ERR_INVALID_ARGUMENT,
                 CE_OPT(&d));
    EXPECT_AFTER(set_element(t, b.weight.data, 3, -INFINITY), "weight -inf",
                 NSM_ERR_INVALID_ARGUMENT, CE_OPT(&d));

    EXPECT("grad = logits + 1", NSM_ERR_OVERLAP,
           CE(R, C, b.in.data, LD, b.labels, NULL, &d, b.loss.data, at(t, b.in.data, 1), LD));
    EXPECT("grad = logits with another ld", NSM_ERR_OVERLAP,
           CE(2, C, b.in.data, LD, b.labels, NULL, &d, b.loss.data, b.in.data, C));
    EXPECT("loss inside logits", NSM_ERR_OVERLAP,
           CE(R, C, b.in.data, LD, b.labels, NULL, &d, at(t, b.in.data, 6), b.out.data, LD));
    EXPECT("loss inside grad", NSM_ERR_OVERLAP,
           CE(R, C, b.in.data, LD, b.labels, NULL, &d, at(t, b.out.data, 2), b.out.data, LD));
    EXPECT("loss is weight", NSM_ERR_OVERLAP,
           CE(R, C, b.in.data, LD, b.labels, b.weight.data, &d, b.weight.data, b.out.data, LD));
    EXPECT("grad over target", NSM_ERR_OVERLAP,
           CE(1, C, b.in.data, LD, b.labels, NULL, &d, b.loss.data, b.target.data, C));
    nsm_cross_entropy_options none = options_with(NSM_REDUCTION_NONE, 0.0, 1.0);
    EXPECT("loss[rows] over the last row of grad (reduction none)", NSM_ERR_OVERLAP,
           CE(R, C, b.in.data, LD, b.labels, NULL, &none, at(t, b.out.data, 2 * LD + 2), b.out.data, LD));
#undef CE_OPT
#undef CE
}

static void errors_cross_entropy_soft(dtype t)
{
    set_context("op=%s bad input len=%d rows=%d ld=%d seed=fixed",
                op_name("cross_entropy_soft", t), C, R, LD);
    nsm_cross_entropy_options d = NSM_CROSS_ENTROPY_OPTIONS_INIT;
#define CS(rows, cols, logits, ld, target, ldt, weight, opt, loss, grad, ldg)                    \
    call_cross_entropy_soft(t, rows, cols, logits, ld, target, ldt, weight, opt, loss, grad, ldg)
#define CS_OPT(opt) CS(R, C, b.in.data, LD, b.in2.data, LD, b.weight.data, opt, b.loss.data, b.out.data, LD)
    EXPECT("NULL logits", NSM_ERR_NULL_POINTER, CS(R, C, NULL, LD, b.in2.data, LD, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("NULL target", NSM_ERR_NULL_POINTER, CS(R, C, b.in.data, LD, NULL, LD, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("loss and grad NULL", NSM_ERR_NULL_POINTER, CS(R, C, b.in.data, LD, b.in2.data, LD, NULL, &d, NULL, NULL, LD));
    EXPECT("rows -1", NSM_ERR_INVALID_SHAPE, CS(-1, C, b.in.data, LD, b.in2.data, LD, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("cols 0", NSM_ERR_INVALID_SHAPE, CS(R, 0, b.in.data, LD, b.in2.data, LD, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("ld_target < cols", NSM_ERR_INVALID_LEADING_DIM, CS(R, C, b.in.data, LD, b.in2.data, C - 1, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("ld_logits < cols", NSM_ERR_INVALID_LEADING_DIM, CS(R, C, b.in.data, 1, b.in2.data, LD, NULL, &d, b.loss.data, b.out.data, LD));
    EXPECT("ld_grad < cols", NSM_ERR_INVALID_LEADING_DIM, CS(R, C, b.in.data, LD, b.in2.data, LD, NULL, &d, b.loss.data, b.out.data, 2));
    nsm_cross_entropy_options o;
    o = options_with(NSM_REDUCTION_MEAN, 1.0001, 1.0);
    EXPECT("label_smoothing 1.0001", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    o = options_with(NSM_REDUCTION_MEAN, NAN, 1.0);
    EXPECT("label_smoothing NaN", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    o = options_with(7, 0.0, 1.0);
    EXPECT("reduction 7", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    o = options_with(NSM_REDUCTION_NONE, 0.0, -INFINITY);
    EXPECT("grad_scale -inf", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    o = options_with(NSM_REDUCTION_MEAN, 0.0, 1.0);
    o.struct_size = 8;
    EXPECT("options.struct_size 8", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    extended_options x = extended_options_with(&d);
    x.extra[15] = 0x80;
    EXPECT("options.struct_size sizeof + 16 with its last byte set", NSM_ERR_INVALID_ARGUMENT,
           CS_OPT(&x.known));
    names_offset(EXTRA_OFFSET(15));
    o = options_with(NSM_REDUCTION_MEAN, 0.0, 1.0);
    EXPECT_AFTER(o.grad_output = b.in2.data, "grad_output with reduction mean", NSM_ERR_INVALID_ARGUMENT, CS_OPT(&o));
    o.reduction = NSM_REDUCTION_NONE;
    EXPECT_AFTER(o.grad_output = b.loss.data, "grad_output is loss", NSM_ERR_OVERLAP, CS_OPT(&o));
    EXPECT_AFTER(o.grad_output = at(t, b.out.data, LD), "grad_output inside grad", NSM_ERR_OVERLAP, CS_OPT(&o));
    EXPECT_AFTER(set_element(t, b.weight.data, 0, INFINITY), "weight inf", NSM_ERR_INVALID_ARGUMENT,
                 CS_OPT(&d));
    EXPECT("grad = target + 1", NSM_ERR_OVERLAP,
           CS(R, C, b.in.data, LD, b.in2.data, LD, NULL, &d, b.loss.data, at(t, b.in2.data, 1), LD));
    EXPECT("grad = logits - 1", NSM_ERR_OVERLAP,
           CS(2, C, at(t, b.in.data, 1), LD, b.in2.data, LD, NULL, &d, b.loss.data, b.in.data, LD));
    EXPECT("grad = target with another ld", NSM_ERR_OVERLAP,
           CS(2, C, b.in.data, LD, b.in2.data, LD, NULL, &d, b.loss.data, b.in2.data, C));
    EXPECT("loss inside target", NSM_ERR_OVERLAP,
           CS(R, C, b.in.data, LD, b.in2.data, LD, NULL, &d, at(t, b.in2.data, 3), b.out.data, LD));
#undef CS_OPT
#undef CS
}

void group_errors(void)
{
    for (int dt = 0; dt < 2; ++dt) {
        dtype t = (dtype)dt;
        errors_softmax(t, 0);
        errors_softmax(t, 1);
        errors_backward(t, 0);
        errors_backward(t, 1);
        errors_jacobian(t);
        errors_cross_entropy(t);
        errors_cross_entropy_soft(t);
    }
}

/* ---- misc ------------------------------------------------------------------------------------- */
static void status_strings(void)
{
    set_context("op=nsm_status_string");
    for (int code = 0; code <= NSM_ERR_OUT_OF_MEMORY; ++code) {
        const char* text = nsm_status_string(code);
        check(text != NULL && text[0] != '\0' && strcmp(text, "unknown status") != 0,
              "code %d has no text of its own: \"%s\"", code, text ? text : "(null)");
        for (int other = 0; other < code; ++other)
            check(strcmp(text, nsm_status_string(other)) != 0, "codes %d and %d share the text \"%s\"",
                  other, code, text);
    }
    const int unknown[] = {-1, NSM_ERR_OUT_OF_MEMORY + 1, 100, 2147483647};
    for (int i = 0; i < 4; ++i) {
        const char* text = nsm_status_string(unknown[i]);
        check(text != NULL && strcmp(text, "unknown status") == 0,
              "code %d: expected \"unknown status\", got \"%s\"", unknown[i], text ? text : "(null)");
    }
}

static void versions(void)
{
    set_context("op=nsm_version");
    check(nsm_version_number() == NSM_VERSION_NUMBER, "nsm_version_number() = %d, header %d",
          (int)nsm_version_number(), NSM_VERSION_NUMBER);
    check(strcmp(nsm_version_string(), NSM_VERSION_STRING) == 0, "nsm_version_string() = \"%s\", header \"%s\"",
          nsm_version_string(), NSM_VERSION_STRING);
}

/* rows == 0: nothing computed or written; a mean loss is NaN, a sum loss 0. */
static void zero_rows(dtype t)
{
    set_context("op=%s rows=0", op_name("all", t));
    buffers b = buffers_new(t);
    all_bytes before = take_all(&b);
    nsm_status st;
    st = call_softmax(t, 0, 0, C, b.in.data, LD, b.out.data, LD);
    check(st == NSM_OK, "softmax rows 0: status %d", (int)st);
    st = call_softmax(t, 1, 0, C, b.in.data, LD, b.out.data, LD);
    check(st == NSM_OK, "log_softmax rows 0: status %d", (int)st);
    st = call_backward(t, 0, 0, C, b.in.data, LD, b.in2.data, LD, b.out.data, LD);
    check(st == NSM_OK, "softmax_backward rows 0: status %d", (int)st);
    st = call_backward(t, 1, 0, C, b.in.data, LD, b.in2.data, LD, b.out.data, LD);
    check(st == NSM_OK, "log_softmax_backward rows 0: status %d", (int)st);
    nsm_cross_entropy_options none = options_with(NSM_REDUCTION_NONE, 0.0, 1.0);
    st = call_cross_entropy(t, 0, C, b.in.data, LD, b.labels, NULL, &none, b.loss.data, b.out.data, LD);
    check(st == NSM_OK, "cross_entropy none rows 0: status %d", (int)st);
    st = call_cross_entropy_soft(t, 0, C, b.in.data, LD, b.in2.data, LD, NULL, &none, b.loss.data,
                                 b.out.data, LD);
    check(st == NSM_OK, "cross_entropy_soft none rows 0: status %d", (int)st);
    for (int i = 0; i < 7; ++i) {
        check(snapshot_unchanged(&before.s[i]), "a buffer (%d) was written with rows == 0", i);
        snapshot_free(&before.s[i]);
    }

    /* rows == 0 with NULL pointers (torch.empty(0, C).data_ptr() is 0): accepted, nothing
     * written; a reduced loss still gets its value. cols is still validated. */
    before = take_all(&b);
    st = call_softmax(t, 0, 0, C, NULL, LD, NULL, LD);
    check(st == NSM_OK, "softmax rows 0, NULL pointers: status %d (%s)", (int)st, nsm_last_error());
    st = call_softmax(t, 1, 0, C, NULL, LD, NULL, LD);
    check(st == NSM_OK, "log_softmax rows 0, NULL pointers: status %d (%s)", (int)st, nsm_last_error());
    st = call_backward(t, 0, 0, C, NULL, LD, NULL, LD, NULL, LD);
    check(st == NSM_OK, "softmax_backward rows 0, NULL pointers: status %d (%s)", (int)st, nsm_last_error());
    st = call_backward(t, 1, 0, C, NULL, LD, NULL, LD, NULL, LD);
    check(st == NSM_OK, "log_softmax_backward rows 0, NULL pointers: status %d (%s)", (int)st, nsm_last_error());
    st = call_cross_entropy(t, 0, C, NULL, LD, NULL, NULL, &none, NULL, NULL, LD);
    check(st == NSM_OK, "cross_entropy rows 0, every pointer NULL: status %d (%s)", (int)st, nsm_last_error());
    st = call_cross_entropy_soft(t, 0, C, NULL, LD, NULL, LD, NULL, &none, NULL, NULL, LD);
    check(st == NSM_OK, "cross_entropy_soft rows 0, every pointer NULL: status %d (%s)", (int)st, nsm_last_error());
    st = call_softmax(t, 0, 0, 0, NULL, LD, NULL, LD);
    check(st == NSM_ERR_INVALID_SHAPE, "softmax rows 0, cols 0, NULL pointers: status %d, expected %d", (int)st,
          NSM_ERR_INVALID_SHAPE);
    for (int i = 0; i < 7; ++i) {
        check(snapshot_unchanged(&before.s[i]), "a buffer (%d) was written with rows == 0 and NULL pointers", i);
        snapshot_free(&before.s[i]);
    }

    nsm_cross_entropy_options mean = options_with(NSM_REDUCTION_MEAN, 0.0, 1.0);
    nsm_cross_entropy_options sum = options_with(NSM_REDUCTION_SUM, 0.0, 1.0);
    st = call_cross_entropy(t, 0, C, NULL, LD, NULL, NULL, &mean, b.loss.data, NULL, LD);
    check(st == NSM_OK && isnan(get_element(t, b.loss.data, 0)),
          "cross_entropy mean rows 0, NULL logits and target: status %d, loss %g (expected NaN)", (int)st,
          get_element(t, b.loss.data, 0));
    st = call_cross_entropy_soft(t, 0, C, NULL, LD, NULL, LD, NULL, &sum, b.loss.data, NULL, LD);
    check(st == NSM_OK && get_element(t, b.loss.data, 0) == 0.0,
          "cross_entropy_soft sum rows 0, NULL logits and target: status %d, loss %g (expected 0)", (int)st,
          get_element(t, b.loss.data, 0));

    /* A newer header's larger struct whose extra bytes are zero is accepted. */
    extended_options x = extended_options_with(&sum);
    st = call_cross_entropy(t, R, C, b.in.data, LD, b.labels, NULL, &x.known, b.loss.data, NULL, LD);
    check(st == NSM_OK, "cross_entropy with an options struct 16 bytes larger, those bytes 0: status %d (%s)",
          (int)st, nsm_last_error());
    /* grad_output with no rows: nothing is read through it. */
    nsm_cross_entropy_options per_row = options_with(NSM_REDUCTION_NONE, 0.0, 1.0);
    per_row.grad_output = b.in2.data;
    st = call_cross_entropy(t, 0, C, NULL, LD, NULL, NULL, &per_row, NULL, NULL, LD);
    check(st == NSM_OK, "cross_entropy none rows 0 with grad_output: status %d (%s)", (int)st, nsm_last_error());
    st = call_cross_entropy(t, 0, C, b.in.data, LD, b.labels, NULL, &mean, b.loss.data, b.out.data, LD);
    check(st == NSM_OK && isnan(get_element(t, b.loss.data, 0)),
          "cross_entropy mean rows 0: status %d, loss %g (expected NaN)", (int)st, get_element(t, b.loss.data, 0));
    st = call_cross_entropy(t, 0, C, b.in.data, LD, b.labels, NULL, &sum, b.loss.data, b.out.data, LD);
    check(st == NSM_OK && get_element(t, b.loss.data, 0) == 0.0,
          "cross_entropy sum rows 0: status %d, loss %g (expected 0)", (int)st, get_element(t, b.loss.data, 0));
    st = call_cross_entropy_soft(t, 0, C, b.in.data, LD, b.in2.data, LD, NULL, &mean, b.loss.data, b.out.data, LD);
    check(st == NSM_OK && isnan(get_element(t, b.loss.data, 0)),
          "cross_entropy_soft mean rows 0: status %d, loss %g (expected NaN)", (int)st, get_element(t, b.loss.data, 0));
    st = call_cross_entropy_soft(t, 0, C, b.in.data, LD, b.in2.data, LD, NULL, &sum, b.loss.data, b.out.data, LD);
    check(st == NSM_OK && get_element(t, b.loss.data, 0) == 0.0,
          "cross_entropy_soft sum rows 0: status %d, loss %g (expected 0)", (int)st, get_element(t, b.loss.data, 0));

    /* Every row ignored: mean is NaN, the gradient all zeros. */
    for (int r = 0; r < R; ++r) b.labels[r] = -100;
    st = call_cross_entropy(t, R, C, b.in.data, LD, b.labels, NULL, &mean, b.loss.data, b.out.data, LD);
    int zero = 1;
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) zero &= get_element(t, b.out.data, r * LD + c) == 0.0;
    check(st == NSM_OK && isnan(get_element(t, b.loss.data, 0)) && zero,
          "cross_entropy mean, every row ignored: status %d, loss %g (expected NaN), gradient zero: %d",
          (int)st, get_element(t, b.loss.data, 0), zero);
    buffers_free(&b);
}

/* The last error is per thread, and concurrent calls on disjoint outputs give correct results. */
#define THREADS 4
typedef struct thread_work {
    int index;
    int fresh_message_empty; /* nsm_last_error() was "" before this thread's first failure */
    int own_message_kept;    /* the thread's message survived the other threads' failures */
    int wrong_results;
} thread_work;

static pthread_barrier_t s_barrier;

static void* thread_main(void* arg)
{
    thread_work* w = (thread_work*)arg;
    const char* first = nsm_last_error();
    w->fresh_message_empty = first != NULL && first[0] == '\0';
    /* Each thread fails in its own way: cols = 0 vs. a NULL pointer. */
    float out[8];
    float in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    if (w->index % 2)
        nsm_softmax_f32(1, 0, in, 8, out, 8);
    else
        nsm_softmax_f32(1, 8, NULL, 8, out, 8);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", nsm_last_error());
    pthread_barrier_wait(&s_barrier); /* every thread has failed now */
    w->own_message_kept = mine[0] != '\0' && strcmp(mine, nsm_last_error()) == 0;

    double z[64], ref[64];
    float zf[64], of[64];
    rng g = rng_new(case_seed(7, (uint64_t)w->index, 0, 6));
    for (int iteration = 0; iteration < 200; ++iteration) {
        for (int j = 0; j < 64; ++j) {
            zf[j] = (float)rng_uniform(&g, -4, 4); /* |z − max| <= 8: the rounding of z − max stays
                                                       well inside the 1e-6 bound */
            z[j] = zf[j];
        }
        ref_softmax(z, 64, ref);
        if (nsm_softmax_f32(1, 64, zf, 64, of, 64) != NSM_OK) {
            ++w->wrong_results;
            continue;
        }
        for (int j = 0; j < 64; ++j)
            if (!(fabs(of[j] - ref[j]) <= 1e-6 * fabs(ref[j]) + 1e-37)) {
                ++w->wrong_results;
                break;
            }
    }
    return NULL;
}

static void threads(void)
{
    set_context("op=softmax_f32 threads=%d seed=%llu", THREADS, (unsigned long long)g_base_seed);
    pthread_t ids[THREADS];
    thread_work work[THREADS];
    pthread_barrier_init(&s_barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; ++i) {
        memset(&work[i], 0, sizeof work[i]);
        work[i].index = i;
        pthread_create(&ids[i], NULL, thread_main, &work[i]);
    }
    for (int i = 0; i < THREADS; ++i) pthread_join(ids[i], NULL);
    pthread_barrier_destroy(&s_barrier);
    for (int i = 0; i < THREADS; ++i) {
        check(work[i].fresh_message_empty, "thread %d: nsm_last_error() was not \"\" before any failure", i);
        check(work[i].own_message_kept, "thread %d: its last error changed when other threads failed", i);
        check(work[i].wrong_results == 0, "thread %d: %d wrong concurrent results", i, work[i].wrong_results);
    }
}

void group_misc(void)
{
    status_strings();
    versions();
    zero_rows(F32);
    zero_rows(F64);
    threads();
}

/* ---- no variant ------------------------------------------------------------------------------- */
void group_no_variant(const char* expected_text)
{
    set_context("no variant (expected message containing \"%s\")", expected_text ? expected_text : "");
    check(strcmp(nsm_isa(), "none") == 0, "nsm_isa() = \"%s\", expected \"none\"", nsm_isa());
    versions();
    status_strings();
    for (int dt = 0; dt < 2; ++dt) {
        dtype t = (dtype)dt;
        nsm_cross_entropy_options d = NSM_CROSS_ENTROPY_OPTIONS_INIT;
#define NONE(what, call)                                                                           \
    do {                                                                                           \
        EXPECT(what, NSM_ERR_UNSUPPORTED_CPU, call);                                               \
        if (expected_text != NULL)                                                                 \
            check(strstr(nsm_last_error(), expected_text) != NULL,                                 \
                  "%s: message \"%s\" does not mention \"%s\"", what, nsm_last_error(),            \
                  expected_text);                                                                  \
    } while (0)
        NONE("softmax", call_softmax(t, 0, R, C, b.in.data, LD, b.out.data, LD));
        NONE("log_softmax", call_softmax(t, 1, R, C, b.in.data, LD, b.out.data, LD));
        NONE("softmax_backward", call_backward(t, 0, R, C, b.in.data, LD, b.in2.data, LD, b.out.data, LD));
        NONE("log_softmax_backward", call_backward(t, 1, R, C, b.in.data, LD, b.in2.data, LD, b.out.data, LD));
        NONE("softmax_jacobian", call_jacobian(t, C, b.in.data, b.out.data, C));
        NONE("cross_entropy", call_cross_entropy(t, R, C, b.in.data, LD, b.labels, NULL, &d,
                                                 b.loss.data, b.out.data, LD));
        NONE("cross_entropy_soft", call_cross_entropy_soft(t, R, C, b.in.data, LD, b.in2.data, LD,
                                                           NULL, &d, b.loss.data, b.out.data, LD));
#undef NONE
    }
}
