// compare.cpp — NativeSoftmax against the C/C++ libraries a native user would pick instead,
// side by side in one run on the same shapes: oneDNN's softmax / logsoftmax primitives and
// XNNPACK's softmax operator (both single-threaded here), and a plain scalar loop.
//
//   build/bin/nsm_bench_compare            (OMP_NUM_THREADS=1 keeps oneDNN on one thread)
//
// Prints the median time per call and per element, and each library's ratio to NativeSoftmax;
// it also checks every library's output against NativeSoftmax's, so a fast wrong answer shows.
// Nothing here asserts on time.
#include "nativesoftmax.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <xnnpack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

struct shape {
    int64_t rows, cols;
};

// Median over `repeats` samples of the mean time of one call, in seconds; each sample runs the
// call often enough to last about 20 ms.
double median_seconds(const std::function<void()>& call, int repeats = 7)
{
    using clock = std::chrono::steady_clock;
    call();
    auto start = clock::now();
    call();
    double once = std::chrono::duration<double>(clock::now() - start).count();
    long iterations = std::max(1L, static_cast<long>(0.02 / std::max(once, 1e-9)));
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
        start = clock::now();
        for (long i = 0; i < iterations; ++i) call();
        samples.push_back(std::chrono::duration<double>(clock::now() - start).count() / iterations);
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

// max |a − b| / max(|b|, floor): relative for probabilities (floor 1e-30), and relative to
// max(|b|, 1) for log-probabilities, whose values near 0 make a pure ratio meaningless.
double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        double scale = std::max(std::fabs(static_cast<double>(b[i])), floor);
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / scale);
    }
    return worst;
}

void scalar_softmax(const shape& s, const float* z, float* o, bool log)
{
    for (int64_t r = 0; r < s.rows; ++r) {
        const float* x = z + r * s.cols;
        float* y = o + r * s.cols;
        float m = *std::max_element(x, x + s.cols);
        double sum = 0;
        for (int64_t j = 0; j < s.cols; ++j) sum += std::exp(x[j] - m);
        if (log) {
            float lse = static_cast<float>(std::log(sum));
            for (int64_t j = 0; j < s.cols; ++j) y[j] = x[j] - m - lse;
        } else {
            float inv = static_cast<float>(1.0 / sum);
            for (int64_t j = 0; j < s.cols; ++j) y[j] = std::exp(x[j] - m) * inv;
        }
    }
}

struct contender {
    std::string name;
    std::function<void()> call;
    std::vector<float>* output;
};

void report(const char* op, const shape& s, std::vector<contender>& contenders, const std::vector<float>& ours)
{
    double base = 0;
    for (auto& c : contenders) {
        double t = median_seconds(c.call);
        if (base == 0) base = t;
        double diff = max_relative_difference(*c.output, ours, op[0] == 'l' ? 1.0 : 1e-30);
        std::printf("%-11s %7lldx%-7lld %-14s %10.1f us %8.3f ns/elem %7.2fx   max rel. diff %.1e\n", op,
                    static_cast<long long>(s.rows), static_cast<long long>(s.cols), c.name.c_str(), t * 1e6,
                    t * 1e9 / static_cast<double>(s.rows * s.cols), t / base, diff);
    }
}

}  // namespace

int main()
{
    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        std::fprintf(stderr, "library version %d does not match the header's %d\n", nsm_version_number(),
                     NSM_VERSION_NUMBER);
        return 1;
    }
    if (xnn_initialize(nullptr) != xnn_status_success) {
        std::fprintf(stderr, "XNNPACK failed to initialise\n");
        return 1;
    }
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);

    std::printf("NativeSoftmax %s (%s) vs oneDNN %d.%d and XNNPACK, float32, one thread; ratio = time / NativeSoftmax's\n",
                nsm_version_string(), nsm_isa(), dnnl_version()->major, dnnl_version()->minor);
    const shape shapes[] = {{256, 10}, {64, 1000}, {8, 32000}, {2, 128256}, {4096, 1000}};
    std::mt19937 random(20261129);
    std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
    for (const shape& s : shapes) {
        size_t n = static_cast<size_t>(s.rows * s.cols);
        std::vector<float> z(n), ours(n), dnnl_out(n), xnn_out(n), scalar_out(n);
        for (float& v : z) v = uniform(random);

        dnnl::memory::desc md({s.rows, s.cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
        dnnl::memory src(md, engine, z.data()), dst(md, engine, dnnl_out.data());
        dnnl::softmax_forward dnnl_softmax(dnnl::softmax_forward::primitive_desc(
            dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), engine));
        dnnl::logsoftmax_forward dnnl_logsoftmax(dnnl::logsoftmax_forward::primitive_desc(
            dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), engine));

        xnn_operator_t xnn_softmax = nullptr;
        if (xnn_create_softmax_nc_f32(static_cast<size_t>(s.cols), static_cast<size_t>(s.cols),
                                      static_cast<size_t>(s.cols), 0, &xnn_softmax) != xnn_status_success ||
            xnn_setup_softmax_nc_f32(xnn_softmax, static_cast<size_t>(s.rows), z.data(), xnn_out.data(), nullptr) !=
                xnn_status_success) {
            std::fprintf(stderr, "XNNPACK softmax setup failed\n");
            return 1;
        }

        for (int log = 0; log <= 1; ++log) {
            std::vector<contender> contenders;
            contenders.push_back({"NativeSoftmax",
                                  [&] {
                                      nsm_status st = log ? nsm_log_softmax_f32(s.rows, s.cols, z.data(), s.cols, ours.data(), s.cols)
                                                          : nsm_softmax_f32(s.rows, s.cols, z.data(), s.cols, ours.data(), s.cols);
                                      if (st != NSM_OK) std::fprintf(stderr, "nsm: %s\n", nsm_last_error());
                                  },
                                  &ours});
            contenders.push_back({"oneDNN",
                                  [&] {
                                      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
                                      if (log) dnnl_logsoftmax.execute(stream, args);
                                      else dnnl_softmax.execute(stream, args);
                                      stream.wait();
                                  },
                                  &dnnl_out});
            if (!log)
                contenders.push_back({"XNNPACK", [&] { xnn_run_operator(xnn_softmax, nullptr); }, &xnn_out});
            contenders.push_back({"scalar loop", [&] { scalar_softmax(s, z.data(), scalar_out.data(), log != 0); },
                                  &scalar_out});
            for (auto& c : contenders) c.call();  // every output filled before comparing
            report(log ? "log_softmax" : "softmax", s, contenders, ours);
        }
        xnn_delete_operator(xnn_softmax);
    }
    return 0;
}
