// compare.cpp — NativeSoftmax against the C/C++ libraries a native user would pick instead, side
// by side in one process on the same inputs: oneDNN's softmax and logsoftmax primitives,
// XNNPACK's softmax operator, and memcpy of the same bytes (one read and one write of the
// matrix: the floor any row-wise operation has to pay). NativeSoftmax's fused cross-entropy
// (hard labels, mean, loss and gradient) is timed too; none of the others has one.
//
//   nsm_bench_compare --threads N [--shapes 4096x1000,256x32000] [--rounds 5] [--min-time 0.03]
//                     [--tolerance 1e-3] [--out results.jsonl]
//   nsm_bench_compare --scaling --threads N [same options]
//
// Comparison (without --scaling): one process measures one thread count. The caller sets it for
// every library through the environment, before the libraries start
// (tools/benchmarks/run_benchmarks.py does this): NATIVESOFTMAX_NUM_THREADS for NativeSoftmax and
// OMP_NUM_THREADS for Debian's OpenMP-threaded oneDNN; --threads sizes the pthreadpool given to
// XNNPACK and to memcpy, and is recorded. Written as "result" records.
//
// Thread scaling (--scaling, N >= 2): each NativeSoftmax operation at 1 thread and at N threads
// in this one process, switched with nsm_set_num_threads before each round (outside the timed
// loop), on the same inputs and outputs; for reference, XNNPACK's softmax and memcpy likewise,
// without a pthreadpool and with an N-thread one passed per call (oneDNN is left out: its OpenMP
// thread count is not switched per call here). Every round times the two one right after the
// other (only the untimed wait for idle threads, below, between them), the 1-thread one first in
// even rounds and the N-thread one first in odd rounds, and the operations take turns starting
// the round as in the comparison. Written as
// "thread_scaling" records, "in_process": true, whose per-round times at 1 and at N threads pair
// up round by round, with each round's CPU time over its wall time: how many CPUs the process
// kept busy (fewer than N when the library kept the call on fewer threads, or when the machine
// did not give the process N CPUs all the time).
//
// Before anything is timed, every output is checked against a float64 reference computed here
// from the same float32 logits (in the scaling mode, at both thread counts); a result over
// --tolerance is flagged "correct": false (and its line in the table marked WRONG), never
// silently timed. Timing: after a warm-up, each round runs every contender once, in turn
// (round-robin, starting one further each round), for at least --min-time seconds, each after
// the process's threads have gone idle (untimed: pthreadpool's workers spin for ~20 ms after a
// call); the per-call time of every round is written out, so the reader takes medians over
// rounds. Nothing here asserts on time.
#include "nativesoftmax.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
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
    bool scaling = false;  // NativeSoftmax at 1 and at `threads` threads, in this process
    int rounds = 5;
    double min_time = 0.03;
    double tolerance = 1e-3;
    std::vector<shape> shapes{{65536, 10}, {4096, 1000}, {256, 32000}, {64, 128256}, {16, 262144}};
    std::string out;
};

[[noreturn]] void usage_error(const std::string& message)
{
    std::fprintf(stderr,
                 "nsm_bench_compare: %s\nusage: nsm_bench_compare [--scaling] --threads N [--shapes RxC,...] [--rounds N]\n"
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
            else if (arg == "--scaling") o.scaling = true;
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
    if (o.scaling && (o.threads < 2 || o.threads > 1024))
        usage_error("--scaling needs --threads between 2 and 1024 (it compares them with 1 thread)");
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
    int nsm_threads = 0;            // > 0: nsm_set_num_threads(nsm_threads) before its warm-up and each round
    double max_error = 0;
    long calls_per_round = 1;
    std::vector<double> seconds_per_call;
    std::vector<double> cpus_busy;  // per round: the process's CPU time over the round's wall time
};

// One operation at 1 thread and at N threads (--scaling).
struct thread_pair {
    contender one, many;
};

using steady = std::chrono::steady_clock;

void check(nsm_status status)
{
    if (status != NSM_OK) throw std::runtime_error(std::string("NativeSoftmax: ") + nsm_last_error());
}

double seconds_of(long calls, const std::function<void()>& call)
{
    auto start = steady::now();
    for (long i = 0; i < calls; ++i) call();
    return std::chrono::duration<double>(steady::now() - start).count();
}

// CPU time of every thread of this process, in seconds.
double process_cpu_seconds()
{
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void set_threads_for(const contender& c)
{
    if (c.nsm_threads > 0) check(nsm_set_num_threads(c.nsm_threads));
}

// The warm-up: one call (first touch of the output pages, and of the worker threads), its error
// against the reference, and how many calls make a round of at least --min-time.
void calibrate(contender& c, const options& o)
{
    set_threads_for(c);
    c.call();
    c.max_error = c.error();
    double once = seconds_of(1, c.call);
    c.calls_per_round = std::max(1L, static_cast<long>(std::ceil(o.min_time / std::max(once, 1e-9))));
}

// Waits (at most 0.2 s) until the threads of this process are idle: its CPU time grows by less
// than a tenth of a 5 ms sleep. An idle pthreadpool keeps its workers spinning for ~20 ms after a
// call (XNNPACK, memcpy), which would take a CPU from whatever is timed next.
void settle()
{
    for (int i = 0; i < 40; ++i) {
        double cpu = process_cpu_seconds();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (process_cpu_seconds() - cpu < 0.0005) return;
    }
}

void time_round(contender& c)
{
    settle();
    set_threads_for(c);
    double cpu = process_cpu_seconds();
    double wall = seconds_of(c.calls_per_round, c.call);
    c.cpus_busy.push_back((process_cpu_seconds() - cpu) / wall);
    c.seconds_per_call.push_back(wall / static_cast<double>(c.calls_per_round));
}

void measure(std::vector<contender>& contenders, const options& o)
{
    for (auto& c : contenders) calibrate(c, o);
    size_t n = contenders.size();
    for (int round = 0; round < o.rounds; ++round)
        for (size_t k = 0; k < n; ++k) time_round(contenders[(k + static_cast<size_t>(round)) % n]);
}

// Round r: the pairs in turn, starting one further each round; inside a pair the 1-thread
// contender first when r is even, the N-thread one first when r is odd. So the two times of a
// round are taken one right after the other, and the k-th entries of one.seconds_per_call and
// many.seconds_per_call belong to the same round.
void measure_pairs(std::vector<thread_pair>& pairs, const options& o)
{
    for (auto& p : pairs) {
        calibrate(p.one, o);
        calibrate(p.many, o);
    }
    size_t n = pairs.size();
    for (int round = 0; round < o.rounds; ++round)
        for (size_t k = 0; k < n; ++k) {
            thread_pair& p = pairs[(k + static_cast<size_t>(round)) % n];
            bool one_first = round % 2 == 0;
            time_round(one_first ? p.one : p.many);
            time_round(one_first ? p.many : p.one);
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

// memcpy of `count` floats in `pieces` pieces: one per thread of the pool, or all at once
// without one.
struct copy_job {
    const float* from;
    float* to;
    size_t count, pieces;

    static void piece(void* context, size_t k)
    {
        auto* j = static_cast<copy_job*>(context);
        size_t begin = j->count * k / j->pieces, end = j->count * (k + 1) / j->pieces;
        std::memcpy(j->to + begin, j->from + begin, (end - begin) * sizeof(float));
    }

    void run(pthreadpool* pool)
    {
        if (pieces == 1 || !pool) piece(this, 0);
        else pthreadpool_parallelize_1d(pool, piece, this, pieces, 0);
    }
};

// One shape's inputs and their float64 reference.
struct problem {
    shape s;
    std::vector<float> z;
    std::vector<int64_t> target;
    std::vector<double> lse;
    reference ref() const { return {s, z, target, lse}; }
    size_t elements() const { return static_cast<size_t>(s.elements()); }
};

std::string json_times(const std::vector<double>& seconds)
{
    std::string times;
    for (double v : seconds) times += (times.empty() ? "" : ", ") + json_number(v);
    return times;
}

// The comparison: every library at one thread count. Returns how many NativeSoftmax results
// were wrong.
int compare_libraries(const problem& in, const options& o, pthreadpool* pool, dnnl::engine& engine,
                      dnnl::stream& stream, FILE* out)
{
    const shape& s = in.s;
    const reference ref = in.ref();
    size_t n = in.elements();
    float* z = const_cast<float*>(in.z.data());  // read only: oneDNN's memory takes a non-const handle
    std::vector<float> nsm_sm(n), nsm_lsm(n), nsm_grad(n), dnnl_sm(n), dnnl_lsm(n), xnn_sm(n), copy(n);
    float nsm_loss = 0;

    dnnl::memory::desc md({s.rows, s.cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
    dnnl::memory src(md, engine, z), dst_sm(md, engine, dnnl_sm.data()), dst_lsm(md, engine, dnnl_lsm.data());
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
    check(xnn_setup_softmax_nc_f32(xnn_op, static_cast<size_t>(s.rows), z, xnn_sm.data(), pool),
          "xnn_setup_softmax_nc_f32");

    // memcpy in as many pieces as threads, on the same pool as XNNPACK.
    copy_job job{z, copy.data(), n, static_cast<size_t>(o.threads)};

    const std::vector<int64_t>& target = in.target;
    nsm_cross_entropy_options ce_options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    std::vector<contender> contenders;
    contenders.emplace_back("NativeSoftmax", "softmax",
                            [&] { check(nsm_softmax_f32(s.rows, s.cols, z, s.cols, nsm_sm.data(), s.cols)); },
                            [&] { return ref.softmax_error(nsm_sm); });
    contenders.emplace_back("NativeSoftmax", "log_softmax",
                            [&] { check(nsm_log_softmax_f32(s.rows, s.cols, z, s.cols, nsm_lsm.data(), s.cols)); },
                            [&] { return ref.log_softmax_error(nsm_lsm); });
    contenders.emplace_back("NativeSoftmax", "cross_entropy",
                            [&] {
                                check(nsm_cross_entropy_f32(s.rows, s.cols, z, s.cols, target.data(), nullptr,
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
    contenders.emplace_back("XNNPACK", "softmax", [&] { check(xnn_run_operator(xnn_op, pool), "xnn_run_operator"); },
                            [&] { return ref.softmax_error(xnn_sm); });
    contenders.emplace_back("memcpy", "copy",
                            [&] { job.run(pool); },
                            [&] { return std::memcmp(copy.data(), z, n * sizeof(float)) == 0 ? 0.0 : INFINITY; });
    measure(contenders, o);

    int wrong_ours = 0;
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
                    static_cast<long long>(s.rows), static_cast<long long>(s.cols), c.op.c_str(), c.library.c_str(),
                    t * 1e6, t * 1e9 / static_cast<double>(n), ratio, c.max_error, correct ? "" : "  WRONG");
        if (!out) continue;
        std::fprintf(out,
                     "{\"type\": \"result\", \"producer\": \"cpp\", \"library\": %s, \"op\": %s, "
                     "\"dtype\": \"float32\", \"rows\": %lld, \"cols\": %lld, \"threads\": %d, "
                     "\"max_error\": %s, \"correct\": %s, \"calls_per_round\": %ld, \"seconds_per_call\": [%s]}\n",
                     json_string(c.library).c_str(), json_string(c.op).c_str(), static_cast<long long>(s.rows),
                     static_cast<long long>(s.cols), o.threads, json_number(c.max_error).c_str(),
                     correct ? "true" : "false", c.calls_per_round, json_times(c.seconds_per_call).c_str());
    }
    return wrong_ours;
}

// The thread scaling (--scaling): each NativeSoftmax operation at 1 and at o.threads threads,
// in this process; for reference, XNNPACK's softmax and memcpy likewise, without a pool and with
// `pool` (o.threads threads) passed per call. Returns how many NativeSoftmax results (at either
// count) were wrong.
int scale_threads(const problem& in, const options& o, pthreadpool* pool, FILE* out)
{
    const shape& s = in.s;
    const reference ref = in.ref();
    size_t n = in.elements();
    const float* z = in.z.data();
    const std::vector<int64_t>& target = in.target;
    std::vector<float> probabilities(n), log_probabilities(n), grad(n);
    float loss = 0;
    nsm_cross_entropy_options ce_options = NSM_CROSS_ENTROPY_OPTIONS_INIT;

    std::vector<contender> ops;
    ops.emplace_back("NativeSoftmax", "softmax",
                     [&] { check(nsm_softmax_f32(s.rows, s.cols, z, s.cols, probabilities.data(), s.cols)); },
                     [&] { return ref.softmax_error(probabilities); });
    ops.emplace_back("NativeSoftmax", "log_softmax",
                     [&] { check(nsm_log_softmax_f32(s.rows, s.cols, z, s.cols, log_probabilities.data(), s.cols)); },
                     [&] { return ref.log_softmax_error(log_probabilities); });
    ops.emplace_back("NativeSoftmax", "cross_entropy",
                     [&] {
                         check(nsm_cross_entropy_f32(s.rows, s.cols, z, s.cols, target.data(), nullptr, &ce_options,
                                                     &loss, grad.data(), s.cols));
                     },
                     [&] { return ref.cross_entropy_error(loss, grad); });
    std::vector<thread_pair> pairs;
    for (const contender& op : ops) {
        thread_pair p{op, op};
        p.one.nsm_threads = 1;
        p.many.nsm_threads = o.threads;
        pairs.push_back(std::move(p));
    }

    // The references: one operator per thread count (XNNPACK takes the pool at setup and at run).
    std::vector<float> xnn_probabilities(n), copy(n);
    size_t channels = static_cast<size_t>(s.cols);
    std::unique_ptr<xnn_operator, xnn_status (*)(xnn_operator_t)> xnn_one(nullptr, xnn_delete_operator),
        xnn_many(nullptr, xnn_delete_operator);
    for (auto* owner : {&xnn_one, &xnn_many}) {
        xnn_operator_t op = nullptr;
        check(xnn_create_softmax_nc_f32(channels, channels, channels, 0, &op), "xnn_create_softmax_nc_f32");
        owner->reset(op);
        check(xnn_setup_softmax_nc_f32(op, static_cast<size_t>(s.rows), z, xnn_probabilities.data(),
                                       owner == &xnn_one ? nullptr : pool),
              "xnn_setup_softmax_nc_f32");
    }
    auto xnn_error = [&] { return ref.softmax_error(xnn_probabilities); };
    pairs.push_back({contender("XNNPACK", "softmax",
                               [&] { check(xnn_run_operator(xnn_one.get(), nullptr), "xnn_run_operator"); }, xnn_error),
                     contender("XNNPACK", "softmax",
                               [&] { check(xnn_run_operator(xnn_many.get(), pool), "xnn_run_operator"); }, xnn_error)});
    copy_job copy_one{z, copy.data(), n, 1}, copy_many{z, copy.data(), n, static_cast<size_t>(o.threads)};
    auto copy_error = [&] { return std::memcmp(copy.data(), z, n * sizeof(float)) == 0 ? 0.0 : INFINITY; };
    pairs.push_back({contender("memcpy", "copy", [&] { copy_one.run(nullptr); }, copy_error),
                     contender("memcpy", "copy", [&] { copy_many.run(pool); }, copy_error)});

    measure_pairs(pairs, o);
    check(nsm_set_num_threads(0));

    int wrong = 0;
    for (const thread_pair& p : pairs) {
        double max_error = std::max(p.one.max_error, p.many.max_error);
        bool correct = max_error <= o.tolerance;
        if (!correct && p.one.library == "NativeSoftmax") ++wrong;
        std::vector<double> ratios;
        for (size_t r = 0; r < p.one.seconds_per_call.size(); ++r)
            ratios.push_back(p.many.seconds_per_call[r] / p.one.seconds_per_call[r]);
        double ratio = median(ratios);
        std::printf("%7lldx%-7lld %-13s %-13s 1 thread %9.1f us, %d threads %9.1f us (%.2f CPUs busy); "
                    "median of per-round ratios %d/1 %.2f (x%.2f)   error %.1e%s\n",
                    static_cast<long long>(s.rows), static_cast<long long>(s.cols), p.one.op.c_str(),
                    p.one.library.c_str(),
                    median(p.one.seconds_per_call) * 1e6, o.threads, median(p.many.seconds_per_call) * 1e6,
                    median(p.many.cpus_busy), o.threads, ratio, 1 / ratio, max_error, correct ? "" : "  WRONG");
        if (!out) continue;
        std::fprintf(out,
                     "{\"type\": \"thread_scaling\", \"producer\": \"cpp\", \"library\": %s, \"op\": %s, "
                     "\"dtype\": \"float32\", \"rows\": %lld, \"cols\": %lld, \"in_process\": true, "
                     "\"baseline_threads\": 1, \"threads\": %d, \"max_error\": %s, \"correct\": %s, "
                     "\"baseline_calls_per_round\": %ld, \"calls_per_round\": %ld, "
                     "\"baseline_seconds_per_call\": [%s], \"seconds_per_call\": [%s], "
                     "\"baseline_cpus_busy\": [%s], \"cpus_busy\": [%s]}\n",
                     json_string(p.one.library).c_str(), json_string(p.one.op).c_str(),
                     static_cast<long long>(s.rows), static_cast<long long>(s.cols), o.threads,
                     json_number(max_error).c_str(), correct ? "true" : "false", p.one.calls_per_round,
                     p.many.calls_per_round, json_times(p.one.seconds_per_call).c_str(),
                     json_times(p.many.seconds_per_call).c_str(), json_times(p.one.cpus_busy).c_str(),
                     json_times(p.many.cpus_busy).c_str());
    }
    return wrong;
}

int run(const options& o)
{
    if (nsm_version_number() != NSM_VERSION_NUMBER) {
        std::fprintf(stderr, "library version %d does not match the header's %d\n", nsm_version_number(),
                     NSM_VERSION_NUMBER);
        return 1;
    }
    // The scaling mode starts no OpenMP (oneDNN): its thread count is not switched per call.
    std::unique_ptr<pthreadpool, pool_deleter> pool;
    std::unique_ptr<dnnl::engine> engine;
    std::unique_ptr<dnnl::stream> stream;
    check(xnn_initialize(nullptr), "xnn_initialize");
    if (o.threads > 1) pool.reset(pthreadpool_create(static_cast<size_t>(o.threads)));
    if (!o.scaling) {
        engine = std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0);
        stream = std::make_unique<dnnl::stream>(*engine);
    }

    FILE* out = nullptr;
    if (!o.out.empty()) {
        out = std::fopen(o.out.c_str(), "a");
        if (!out) {
            std::perror(o.out.c_str());
            return 1;
        }
    }
    const dnnl_version_t* dv = dnnl_version();
    char onednn_version[32];
    std::snprintf(onednn_version, sizeof onednn_version, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    if (out)
        std::fprintf(out,
                     "{\"type\": \"meta\", \"producer\": \"cpp\", \"mode\": %s, \"threads\": %d, "
                     "\"nativesoftmax\": %s, \"isa\": %s, \"onednn\": %s, \"onednn_isa\": %s, "
                     "\"NATIVESOFTMAX_NUM_THREADS\": %s, \"OMP_NUM_THREADS\": %s, \"compiler\": %s}\n",
                     o.scaling ? "\"thread_scaling\"" : "\"compare\"", o.threads,
                     json_string(nsm_version_string()).c_str(), json_string(nsm_isa()).c_str(),
                     json_string(onednn_version).c_str(), json_string(onednn_isa()).c_str(),
                     json_string(getenv_or("NATIVESOFTMAX_NUM_THREADS", "")).c_str(),
                     json_string(getenv_or("OMP_NUM_THREADS", "")).c_str(), json_string(__VERSION__).c_str());
    if (o.scaling)
        std::printf("NativeSoftmax %s (%s), XNNPACK, memcpy; float32; 1 against %d threads in one process, "
                    "median per call over %d rounds; error vs float64\n",
                    nsm_version_string(), nsm_isa(), o.threads, o.rounds);
    else
        std::printf("NativeSoftmax %s (%s), oneDNN %s (%s), XNNPACK; float32, %d thread(s); "
                    "median per call over %d rounds; ratio = time / NativeSoftmax's; error vs float64\n",
                    nsm_version_string(), nsm_isa(), onednn_version, onednn_isa(), o.threads, o.rounds);

    std::mt19937_64 random(20261129);
    std::uniform_real_distribution<float> uniform(-10.0f, 10.0f);
    int wrong_ours = 0;
    for (const shape& s : o.shapes) {
        problem in{s, std::vector<float>(static_cast<size_t>(s.elements())),
                   std::vector<int64_t>(static_cast<size_t>(s.rows)), {}};
        for (float& v : in.z) v = uniform(random);
        std::uniform_int_distribution<int64_t> label(0, s.cols - 1);
        for (int64_t& t : in.target) t = label(random);
        in.lse = row_log_sum_exp(s, in.z);

        wrong_ours += o.scaling ? scale_threads(in, o, pool.get(), out) : compare_libraries(in, o, pool.get(), *engine, *stream, out);
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
