// consumer.cpp — a C++ program built against an installed NativeSoftmax:
//
//     c++ consumer.cpp -o consumer $(pkg-config --cflags --libs nativesoftmax)
//         -Wl,-rpath,"$(pkg-config --variable=libdir nativesoftmax)"      (one line)
//
// It checks the loaded library's version and vector path, and log_softmax and the soft-target
// cross-entropy (float64) of a small batch against a reference computed here. Prints
// "isa=<path> version=<version>" and exits 0, or says what is wrong and exits 1.
#include <nativesoftmax.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

int main()
{
    const int64_t rows = 2, cols = 4;
    const std::vector<double> logits = {0.5, -1.0, 2.0, 0.0, 300.0, 301.0, -1e300, 299.5};
    const std::vector<double> targets = {0.25, 0.25, 0.5, 0.0, 0.0, 0.9, 0.0, 0.1};
    std::vector<double> log_probabilities(rows * cols), grad(rows * cols), loss(rows);

    if (nsm_version_number() != NSM_VERSION_NUMBER || std::strcmp(nsm_isa(), "none") == 0) {
        std::fprintf(stderr, "FAIL: version %s (header %s), isa %s: %s\n", nsm_version_string(),
                     NSM_VERSION_STRING, nsm_isa(), nsm_last_error());
        return 1;
    }
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.reduction = NSM_REDUCTION_NONE;
    nsm_status status = nsm_log_softmax_f64(rows, cols, logits.data(), cols, log_probabilities.data(), cols);
    if (status == NSM_OK)
        status = nsm_cross_entropy_soft_f64(rows, cols, logits.data(), cols, targets.data(), cols, nullptr,
                                            &options, loss.data(), grad.data(), cols);
    if (status != NSM_OK) {
        std::fprintf(stderr, "FAIL: %s: %s\n", nsm_status_string(status), nsm_last_error());
        return 1;
    }

    int failures = 0;
    auto check = [&failures](const char* what, int64_t r, int64_t j, double got, double expected) {
        if (!(std::fabs(got - expected) <= 1e-12 * (1.0 + std::fabs(expected)))) {
            std::fprintf(stderr, "FAIL: %s[%lld, %lld] = %.17g, expected %.17g\n", what, (long long)r,
                         (long long)j, got, expected);
            ++failures;
        }
    };
    for (int64_t r = 0; r < rows; ++r) {
        const double* z = &logits[r * cols];
        const double* y = &targets[r * cols];
        double max = *std::max_element(z, z + cols), sum = 0.0, row_loss = 0.0, target_sum = 0.0;
        for (int64_t j = 0; j < cols; ++j) sum += std::exp(z[j] - max);
        double lse = max + std::log(sum);
        for (int64_t j = 0; j < cols; ++j) {
            check("log_softmax", r, j, log_probabilities[r * cols + j], z[j] - lse);
            if (y[j] != 0.0) row_loss += y[j] * (lse - z[j]);
            target_sum += y[j];
        }
        for (int64_t j = 0; j < cols; ++j)
            check("grad", r, j, grad[r * cols + j], std::exp(z[j] - lse) * target_sum - y[j]);
        check("loss", r, 0, loss[r], row_loss);
    }
    if (failures != 0) return 1;
    std::printf("isa=%s version=%s\n", nsm_isa(), nsm_version_string());
    return 0;
}
