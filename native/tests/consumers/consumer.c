/* consumer.c — a C program built against an installed NativeSoftmax, as a user builds one:
 *
 *     cc consumer.c -o consumer $(pkg-config --cflags --libs nativesoftmax) -lm \
 *        -Wl,-rpath,"$(pkg-config --variable=libdir nativesoftmax)"
 *
 * or with find_package(NativeSoftmax) (CMakeLists.txt beside this file). It checks that the
 * library it loaded has the header's version and runs a vector path (a variant was found beside
 * the dispatcher), and that softmax and the hard-label cross-entropy of a small batch agree with a
 * float64 reference computed here. Prints "isa=<path> version=<version>" and exits 0, or says
 * what is wrong and exits 1. (check_install.sh runs it.) */
#include <nativesoftmax.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ROWS 3
#define COLS 5

int main(void)
{
    /* The third row would overflow a naive exp in float32. */
    const float logits[ROWS * COLS] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f,   -2.5f, 0.0f, 0.5f, 7.0f, -1.0f,
                                       1000.0f, 1001.0f, 999.0f, 1000.5f, 998.0f};
    const int64_t labels[ROWS] = {4, 0, 1};
    float probabilities[ROWS * COLS], grad[ROWS * COLS], loss;
    int failures = 0;

    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        fprintf(stderr, "FAIL: library version %s, header %s\n", nsm_version_string(), NSM_VERSION_STRING);
        return 1;
    }
    if (strcmp(nsm_isa(), "none") == 0) {
        fprintf(stderr, "FAIL: no variant loaded: %s\n", nsm_last_error());
        return 1;
    }
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT; /* mean */
    nsm_status status = nsm_softmax_f32(ROWS, COLS, logits, COLS, probabilities, COLS);
    if (status == NSM_OK)
        status = nsm_cross_entropy_f32(ROWS, COLS, logits, COLS, labels, NULL, &options, &loss, grad, COLS);
    if (status != NSM_OK) {
        fprintf(stderr, "FAIL: %s: %s\n", nsm_status_string(status), nsm_last_error());
        return 1;
    }

    double expected_loss = 0.0;
    for (int r = 0; r < ROWS; ++r) {
        const float* z = logits + r * COLS;
        double max = z[0], sum = 0.0;
        for (int j = 1; j < COLS; ++j) max = z[j] > max ? z[j] : max;
        for (int j = 0; j < COLS; ++j) sum += exp((double)z[j] - max);
        expected_loss += (max + log(sum) - z[labels[r]]) / ROWS;
        for (int j = 0; j < COLS; ++j) {
            double o = exp((double)z[j] - max) / sum;
            double g = (o - (j == labels[r])) / ROWS;
            if (fabs(probabilities[r * COLS + j] - o) > 1e-6 * o) {
                fprintf(stderr, "FAIL: softmax[%d, %d] = %.9g, expected %.9g\n", r, j,
                        probabilities[r * COLS + j], o);
                ++failures;
            }
            if (fabs(grad[r * COLS + j] - g) > 1e-6 / ROWS) { /* the header: 1e-6·|s|·Σ|y| */
                fprintf(stderr, "FAIL: grad[%d, %d] = %.9g, expected %.9g\n", r, j, grad[r * COLS + j], g);
                ++failures;
            }
        }
    }
    if (fabs(loss - expected_loss) > 2e-6 * (1.0 + fabs(expected_loss))) {
        fprintf(stderr, "FAIL: loss = %.9g, expected %.9g\n", loss, expected_loss);
        ++failures;
    }
    if (failures != 0) return 1;
    printf("isa=%s version=%s\n", nsm_isa(), nsm_version_string());
    return 0;
}
