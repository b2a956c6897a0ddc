// compare.cpp — NativeSoftmax against the C/C++ libraries a native user would pick instead, side
// by side in one process on the same inputs: oneDNN's softmax and logsoftmax primitives,
// XNNPACK's softmax operator, and memcpy of the same bytes (one read and one write of the
// matrix: the floor any row-wise operation has to pay). NativeSoftmax's fused cross-entropy
// (hard labels, mean, loss and gradient) is timed too; none of the others has one.
//
//   nsm_bench_compare --threads N [--shapes 4096x1000,256x32000] [--rounds 5] [--min-time 0.03]
//                     [--tolerance 1e-3] [--out results.jsonl]
//
// One process measures one thread count. The caller sets it for every library through the
// environment, before the libraries start (tools/benchmarks/run_benchmarks.py does this):
// NATIVESOFTMAX_NUM_THREADS for NativeSoftmax and OMP_NUM_THREADS for Debian's OpenMP-threaded
// oneDNN; --threads sizes the pthreadpool given to XNNPACK and to memcpy, and is recorded.
//
// Before anything is timed, every output is checked against a float64 reference computed here
// from the same float32 logits; a result over --tolerance is flagged "correct": false (and its
// line in the table marked WRONG), never silently timed. Timing: after a warm-up, each round
// runs every contender once, in turn (round-robin, starting one further each round), for at
// least --min-time seconds; the per-call time of every round is written out, so the reader takes
// medians over rounds. Nothing here asserts on time.
#include "nativesoftmax.h"

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

struct shape {
    int64_t rows, cols;
    int64_t elements() const { return rows * cols; }
};

struct options {
    int threads = 1;
    int rounds = 5;
    double min_time = 0.03;
    double tolerance = 1e-3;
    std::vector<shape> shapes{{65536, 10}, {4096, 1000}, {256, 32000}, {64, 128256}, {16, 262144}};
    std::string out;
};

[[noreturn]] void usage_error(const std::string& message)
{
    std::fprintf(stderr,
                 "nsm_bench_compare: %s\nusage: nsm_bench_compare --threads N [--shapes RxC,...] [--rounds N]\n"
                 "                         [--min-time SECONDS] [--tolerance REL] [--out FILE.jsonl]\n",
                 message.c_str());
    std::exit(2);
}

std::vector<shape> parse_shapes(const std::string& text)
{
    std::vector<shape> shapes;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        long long rows = 0, cols = 0;
        char tail = 0;
        if (std::sscanf(item.c_str(), "%lldx%lld%c", &rows, &cols, &tail) != 2 || rows < 1 || cols < 1)
            usage_error("bad shape '" + item + "' (expected ROWSxCOLS, both at least 1)");
        shapes.push_back({rows, cols});
        start = end + 1;
    }
    return shapes;
}

options parse_options(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage_error(arg + " needs a value");
            return argv[++i];
        };
        try {
            if (arg == "--threads") o.threads = std::stoi(value());
            else if (arg == "--rounds") o.rounds = std::stoi(value());
            else if (arg == "--min-time") o.min_time = std::stod(value());
            else if (arg == "--tolerance") o.tolerance = std::stod(value());
            else if (arg == "--shapes") o.shapes = parse_shapes(value());
            else if (arg == "--out") o.out = value();
            else usage_error("unknown argument " + arg);
        } catch (const std::logic_error&) {
            usage_error("bad value for " + arg);
        }
    }
    if (o.threads < 1 || o.rounds < 1 || !(o.min_time >= 0) || !(o.tolerance > 0))
        usage_error("--threads and --rounds must be at least 1, --min-time >= 0, --tolerance > 0");
    return o;
}

// ---- the float64 reference ---------------------------------------------------------------------

// Per row: lse_r = m_r + log Σ_k exp(z[r, k] − m_r) in float64, from the float32 logits.
std::vector<double> row_log_sum_exp(const shape& s, const std::vector<float>& z)
{
    std::vector<double> lse(static_cast<size_t>(s.rows));
    for (int64_t r = 0; r < s.rows; ++r) {
        const float* x = z.data() + r * s.cols;
        double m = *std::max_element(x, x + s.cols);
        double sum = 0;
        for (int64_t j = 0; j < s.cols; ++j) sum += std::exp(static_cast<double>(x[j]) - m);
        lse[static_cast<size_t>(r)] = m + std::log(sum);
    }
    return lse;
}

struct reference {
    const shape& s;
    const std::vector<float>& z;
    const std::vector<int64_t>& target;
    std::vector<double> lse;

    // max |o − p| / max(p, FLT_MIN): relative, as the header's softmax accuracy.
    double softmax_error(const std::vector<float>& o) const
    {
        double worst = 0;
        for (int64_t r = 0; r < s.rows; ++r)
            for (int64_t j = 0; j < s.cols; ++j) {
                size_t i = static_cast<size_t>(r * s.cols + j);
                double p = std::exp(static_cast<double>(z[i]) - lse[static_cast<size_t>(r)]);
                double e = std::fabs(o[i] - p) / std::max(p, static_cast<double>(std::numeric_limits<float>::min()));
                worst = std::isnan(e) ? INFINITY : std::max(worst, e);
            }
        return worst;
    }

    // max |o − log p| / (1 + |log p|), as the header's log_softmax accuracy.
    double log_softmax_error(const std::vector<float>& o) const
    {
        double worst = 0;
        for (int64_t r = 0; r < s.rows; ++r)
            for (int64_t j = 0; j < s.cols; ++j) {
                size_t i = static_cast<size_t>(r * s.cols + j);
                double lp = static_cast<double>(z[i]) - lse[static_cast<size_t>(r)];
                double e = std::fabs(o[i] - lp) / (1 + std::fabs(lp));
                worst = std::isnan(e) ? INFINITY : std::max(worst, e);
            }
        return worst;
    }

    // Mean hard-label loss: relative to 1 + |loss|; gradient (p − y)/rows: absolute, in units of
    // the gradient scale 1/rows (the header's bound is 1e-6 in those units). The worse of the two.
    double cross_entropy_error(float loss, const std::vector<float>& grad) const
    {
        double exact_loss = 0, worst = 0;
        for (int64_t r = 0; r < s.rows; ++r) {
            size_t t = static_cast<size_t>(target[static_cast<size_t>(r)]);
            exact_loss += lse[static_cast<size_t>(r)] - z[static_cast<size_t>(r * s.cols) + t];
            for (int64_t j = 0; j < s.cols; ++j) {
                size_t i = static_cast<size_t>(r * s.cols + j);
                double g = std::exp(static_cast<double>(z[i]) - lse[static_cast<size_t>(r)]) -
                           (static_cast<size_t>(j) == t ? 1.0 : 0.0);
                double e = std::fabs(static_cast<double>(grad[i]) * static_cast<double>(s.rows) - g);
                worst = std::isnan(e) ? INFINITY : std::max(worst, e);
            }
        }
        exact_loss /= static_cast<double>(s.rows);
        double loss_error = std::fabs(loss - exact_loss) / (1 + std::fabs(exact_loss));
        return std::isnan(loss_error) ? INFINITY : std::max(worst, loss_error);
    }
};

// ---- contenders ----------------------------------------------------------------------------------

struct contender {
    contender(std::string library_, std::string op_, std::function<void()> call_, std::function<double()> error_)
        : library(std::move(library_)), op(std::move(op_)), call(std::move(call_)), error(std::move(error_))
    {
    }
    std::string library, op;
    std::function<void()> call;
    std::function<double()> error;  // max error against the float64 reference, after one call
    double max_error = 0;
    long calls_per_round = 1;
    std::vector<double> seconds_per_call;
};

using steady = std::chrono::steady_clock;

double seconds_of(long calls, const std::function<void()>& call)
{
    auto start = steady::now();
    for (long i = 0; i < calls; ++i) call();
    return std::chrono::duration<double>(steady::now() - start).count();
}

void measure(std::vector<contender>& contenders, const options& o)
{
    for (auto& c : contenders) {
        c.call();  // first touch of the output pages
        c.max_error = c.error();
        double once = seconds_of(1, c.call);
        c.calls_per_round = std::max(1L, static_cast<long>(std::ceil(o.min_time / std::max(once, 1e-9))));
    }
    size_t n = contenders.size();
    for (int round = 0; round < o.rounds; ++round)
        for (size_t k = 0; k < n; ++k) {
            contender& c = contenders[(k + static_cast<size_t>(round)) % n];
            c.seconds_per_call.push_back(seconds_of(c.calls_per_round, c.call) / static_cast<double>(c.calls_per_round));
        }
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

std::string json_string(const std::string& s)
{
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\';
        if (static_cast<unsigned char>(ch) < 0x20) continue;
        out += ch;
    }
    return out + "\"";
}

std::string json_number(double v)
{
    if (std::isnan(v)) return "NaN";  // read back by Python's json module
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6g", v);
    return buffer;
}

void check(nsm_status status)
{
    if (status != NSM_OK) throw std::runtime_error(std::string("NativeSoftmax: ") + nsm_last_error());
}

void check(xnn_status status, const char* what)
{
    if (status != xnn_status_success) throw std::runtime_error(std::string("XNNPACK: ") + what + " failed");
}

struct pool_deleter {
    void operator()(pthreadpool* p) const { pthreadpool_destroy(p); }
};

const char* getenv_or(const char* name, const char* fallback)
{
    const char* v = std::getenv(name);
    return v ? v : fallback;
}

const char* onednn_isa()
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

int run(const options& o)
{
    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        std::fprintf(stderr, "library version %d does not match the header's %d\n", nsm_version_number(),
                     NSM_VERSION_NUMBER);
        return 1;
    }
    check(xnn_initialize(nullptr), "xnn_initialize");
    std::unique_ptr<pthreadpool, pool_deleter> pool(
        o.threads > 1 ? pthreadpool_create(static_cast<size_t>(o.threads)) : nullptr);
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);

    FILE* out = nullptr;
    if (!o.out.empty()) {
        out = std::fopen(o.out.c_str(), "a");
        if (!out) {
            std::perror(o.out.c_str());
            return 1;
        }
    }
    // Present once the worker-pool API lands; until then NATIVESOFTMAX_NUM_THREADS may be ignored.
    bool thread_api = dlsym(RTLD_DEFAULT, "nsm_set_num_threads") != nullptr;
    const dnnl_version_t* dv = dnnl_version();
    char onednn_version[32];
    std::snprintf(onednn_version, sizeof onednn_version, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    if (out)
        std::fprintf(out,
                     "{\"type\": \"meta\", \"producer\": \"cpp\", \"threads\": %d, \"nativesoftmax\": %s, "
                     "\"isa\": %s, \"thread_api\": %s, \"onednn\": %s, \"onednn_isa\": %s, "
                     "\"NATIVESOFTMAX_NUM_THREADS\": %s, \"OMP_NUM_THREADS\": %s, \"compiler\": %s}\n",
                     o.threads, json_string(nsm_version_string()).c_str(), json_string(nsm_isa()).c_str(),
                     thread_api ? "true" : "false", json_string(onednn_version).c_str(),
                     json_string(onednn_isa()).c_str(),
                     json_string(getenv_or("NATIVESOFTMAX_NUM_THREADS", "")).c_str(),
                     json_string(getenv_or("OMP_NUM_THREADS", "")).c_str(), json_string(__VERSION__).c_str());
    std::printf("NativeSoftmax %s (%s), oneDNN %s (%s), XNNPACK; float32, %d thread(s); "
                "median per call over %d rounds; ratio = time / NativeSoftmax's; error vs float64\n",
                nsm_version_string(), nsm_isa(), onednn_version, onednn_isa(), o.threads, o.rounds);

    std::mt19937_64 random(20261129);
    std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
    int wrong_ours = 0;
    for (const shape& s : o.shapes) {
        size_t n = static_cast<size_t>(s.elements());
        std::vector<float> z(n);
        for (float& v : z) v = uniform(random);
        std::vector<int64_t> target(static_cast<size_t>(s.rows));
        std::uniform_int_distribution<int64_t> label(0, s.cols - 1);
        for (int64_t& t : target) t = label(random);
        reference ref{s, z, target, row_log_sum_exp(s, z)};

        std::vector<float> nsm_sm(n), nsm_lsm(n), nsm_grad(n), dnnl_sm(n), dnnl_lsm(n), xnn_sm(n), copy(n);
        float nsm_loss = 0;

        dnnl::memory::desc md({s.rows, s.cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
        dnnl::memory src(md, engine, z.data()), dst_sm(md, engine, dnnl_sm.data()), dst_lsm(md, engine, dnnl_lsm.data());
        dnnl::softmax_forward dnnl_softmax(dnnl::softmax_forward::primitive_desc(
            dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), engine));
        dnnl::logsoftmax_forward dnnl_logsoftmax(dnnl::logsoftmax_forward::primitive_desc(
            dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), engine));
        std::unordered_map<int, dnnl::memory> sm_args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst_sm}};
        std::unordered_map<int, dnnl::memory> lsm_args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst_lsm}};

        xnn_operator_t xnn_op = nullptr;
        size_t channels = static_cast<size_t>(s.cols);
        check(xnn_create_softmax_nc_f32(channels, channels, channels, 0, &xnn_op), "xnn_create_softmax_nc_f32");
        std::unique_ptr<xnn_operator, xnn_status (*)(xnn_operator_t)> xnn_owner(xnn_op, xnn_delete_operator);
        check(xnn_setup_softmax_nc_f32(xnn_op, static_cast<size_t>(s.rows), z.data(), xnn_sm.data(), pool.get()),
              "xnn_setup_softmax_nc_f32");

        // memcpy in as many pieces as threads, on the same pool as XNNPACK.
        struct copy_job {
            const float* from;
            float* to;
            size_t count, pieces;
        } job{z.data(), copy.data(), n, static_cast<size_t>(o.threads)};
        auto copy_piece = [](void* context, size_t piece) {
            auto* j = static_cast<copy_job*>(context);
            size_t begin = j->count * piece / j->pieces, end = j->count * (piece + 1) / j->pieces;
            std::memcpy(j->to + begin, j->from + begin, (end - begin) * sizeof(float));
        };

        nsm_cross_entropy_options ce_options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
        std::vector<contender> contenders;
        contenders.emplace_back("NativeSoftmax", "softmax",
                              [&] { check(nsm_softmax_f32(s.rows, s.cols, z.data(), s.cols, nsm_sm.data(), s.cols)); },
                              [&] { return ref.softmax_error(nsm_sm); });
        contenders.emplace_back("NativeSoftmax", "log_softmax",
                              [&] { check(nsm_log_softmax_f32(s.rows, s.cols, z.data(), s.cols, nsm_lsm.data(), s.cols)); },
                              [&] { return ref.log_softmax_error(nsm_lsm); });
        contenders.emplace_back("NativeSoftmax", "cross_entropy",
                              [&] {
                                  check(nsm_cross_entropy_f32(s.rows, s.cols, z.data(), s.cols, target.data(), nullptr,
                                                              &ce_options, &nsm_loss, nsm_grad.data(), s.cols));
                              },
                              [&] { return ref.cross_entropy_error(nsm_loss, nsm_grad); });
        contenders.emplace_back("oneDNN", "softmax",
                              [&] {
                                  dnnl_softmax.execute(stream, sm_args);
                                  stream.wait();
                              },
                              [&] { return ref.softmax_error(dnnl_sm); });
        contenders.emplace_back("oneDNN", "log_softmax",
                              [&] {
                                  dnnl_logsoftmax.execute(stream, lsm_args);
                                  stream.wait();
                              },
                              [&] { return ref.log_softmax_error(dnnl_lsm); });
        contenders.emplace_back("XNNPACK", "softmax", [&] { check(xnn_run_operator(xnn_op, pool.get()), "xnn_run_operator"); },
                              [&] { return ref.softmax_error(xnn_sm); });
        contenders.emplace_back("memcpy", "copy",
                              [&] {
                                  if (job.pieces == 1) copy_piece(&job, 0);
                                  else pthreadpool_parallelize_1d(pool.get(), copy_piece, &job, job.pieces, 0);
                              },
                              [&] { return std::memcmp(copy.data(), z.data(), n * sizeof(float)) == 0 ? 0.0 : INFINITY; });
        measure(contenders, o);

        std::map<std::string, double> ours;
        for (auto& c : contenders)
            if (c.library == "NativeSoftmax") ours[c.op] = median(c.seconds_per_call);
        for (auto& c : contenders) {
            bool correct = c.max_error <= o.tolerance;
            if (!correct && c.library == "NativeSoftmax") ++wrong_ours;
            double t = median(c.seconds_per_call);
            auto base = ours.find(c.op);
            char ratio[32] = "";
            if (base != ours.end()) std::snprintf(ratio, sizeof ratio, "%.2fx", t / base->second);
            std::printf("%7lldx%-7lld %-13s %-13s %11.1f us %8.3f ns/elem %7s   error %.1e%s\n",
                        static_cast<long long>(s.rows), static_cast<long long>(s.cols), c.op.c_str(),
                        c.library.c_str(), t * 1e6, t * 1e9 / static_cast<double>(n), ratio, c.max_error,
                        correct ? "" : "  WRONG");
            if (!out) continue;
            std::string times;
            for (double v : c.seconds_per_call) times += (times.empty() ? "" : ", ") + json_number(v);
            std::fprintf(out,
                         "{\"type\": \"result\", \"producer\": \"cpp\", \"library\": %s, \"op\": %s, "
                         "\"dtype\": \"float32\", \"rows\": %lld, \"cols\": %lld, \"threads\": %d, "
                         "\"max_error\": %s, \"correct\": %s, \"calls_per_round\": %ld, \"seconds_per_call\": [%s]}\n",
                         json_string(c.library).c_str(), json_string(c.op).c_str(), static_cast<long long>(s.rows),
                         static_cast<long long>(s.cols), o.threads, json_number(c.max_error).c_str(),
                         correct ? "true" : "false", c.calls_per_round, times.c_str());
        }
        std::fflush(stdout);
        if (out) std::fflush(out);
    }
    if (out) std::fclose(out);
    if (wrong_ours) {
        std::fprintf(stderr, "NativeSoftmax gave %d result(s) outside the tolerance %g\n", wrong_ours, o.tolerance);
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    options o = parse_options(argc, argv);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nsm_bench_compare: %s\n", e.what());
        return 1;
    }
}
