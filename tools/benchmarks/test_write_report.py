#!/usr/bin/python3
"""The report on a fixed set of results whose figures are known: rounds pooled over passes before
the median, ratios paired within a producer, the best other library chosen by the largest ratio,
a library flagged wrong left out of every ratio and named in the notes, the soft-target table,
the Threads table from the in-process thread_scaling records only (median of per-round ratios; a missing record reported
as missing, a malformed one refused), the per-call table, the "generated" marker, and (where
matplotlib is installed) the two plots.
Run by CTest (bench_report_fixture); plain unittest, no timing.
"""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
MS = 1e-3


def result(producer, library, op, shape, threads, seconds, correct=True, error=1e-7):
    return {"type": "result", "producer": producer, "library": library, "op": op, "dtype": "float32",
            "rows": shape[0], "cols": shape[1], "threads": threads, "max_error": error if correct else 0.5,
            "correct": correct, "calls_per_round": 1, "seconds_per_call": seconds}


def thread_scaling(op, shape, threads, baseline, seconds, correct=True, in_process=True, cpus_busy=None,
                   library="NativeSoftmax"):
    record = {"type": "thread_scaling", "producer": "cpp", "library": library, "op": op, "dtype": "float32",
              "rows": shape[0], "cols": shape[1], "baseline_threads": 1, "threads": threads,
              "max_error": 1e-7 if correct else 0.5, "correct": correct, "baseline_calls_per_round": 1,
              "calls_per_round": 1, "baseline_seconds_per_call": baseline, "seconds_per_call": seconds,
              "baseline_cpus_busy": [1.0] * len(baseline), "cpus_busy": cpus_busy or [threads] * len(seconds)}
    if in_process is not None:
        record["in_process"] = in_process
    return record


def fixture(directory):
    config = {"total_elements": 64, "sweep_cols": [8, 64], "acceptance_shapes": [[4, 16]],
              "thread_shapes": [[4, 16]], "tiny_shape": [1, 10], "passes": 2, "rounds": 3, "min_time": 0.01,
              "tolerance": 1e-3, "thread_counts": [1, 2], "all_threads": 2, "quick": False}
    meta = {"date": "2000-01-01 00:00 UTC", "commit": "abc1234", "machine": {"cpu_model": "Test CPU"},
            "cpus_allowed": [0, 1], "packages": {}, "dotnet_sdk": "", "config": config, "skipped": {},
            "failures": [], "seconds_measuring": 1.0, "seconds_per_process": {}}
    (directory / "meta.json").write_text(json.dumps(meta))
    a = [4, 16]
    cpp = [
        {"type": "meta", "producer": "cpp", "mode": "compare", "threads": 1, "nativesoftmax": "9.9.9", "isa": "avx2",
         "onednn": "2.6.3", "onednn_isa": "avx2", "compiler": "12"},
        # Two passes of NativeSoftmax softmax: pooled [0.7, 0.8, 1.0, 1.0, 9.0, 9.5] ms has median
        # 1.0 ms (the first pass alone would give 0.8, the second 9.0).
        result("cpp", "NativeSoftmax", "softmax", a, 1, [0.7 * MS, 0.8 * MS, 1.0 * MS]),
        result("cpp", "NativeSoftmax", "softmax", a, 1, [9.0 * MS, 1.0 * MS, 9.5 * MS]),
        result("cpp", "oneDNN", "softmax", a, 1, [2.0 * MS]),                     # ratio 0.50
        result("cpp", "XNNPACK", "softmax", a, 1, [0.25 * MS], correct=False),    # 4.0, but wrong
        result("cpp", "NativeSoftmax", "log_softmax", a, 1, [3.0 * MS]),
        result("cpp", "oneDNN", "log_softmax", a, 1, [2.0 * MS]),                 # ratio 1.50
        result("cpp", "NativeSoftmax", "cross_entropy", a, 1, [4.0 * MS]),
        result("cpp", "memcpy", "copy", a, 1, [0.5 * MS]),                        # softmax / memcpy 2.00
        result("cpp", "NativeSoftmax", "softmax", a, 2, [0.5 * MS]),              # 2 threads / 1: 0.50
        result("cpp", "NativeSoftmax", "log_softmax", a, 2, [3.0 * MS]),
        result("cpp", "NativeSoftmax", "cross_entropy", a, 2, [2.0 * MS]),
        result("cpp", "oneDNN", "softmax", a, 2, [1.0 * MS]),
        result("cpp", "XNNPACK", "softmax", a, 2, [0.4 * MS]),                    # best at 2 threads: 1.25
    ]
    python = [
        {"type": "meta", "producer": "python", "threads": 1, "isa": "avx2", "versions": {"torch": "1.0"}},
        result("python", "NativeSoftmax (Python)", "softmax", a, 1, [1.2 * MS]),
        result("python", "PyTorch", "softmax", a, 1, [1.6 * MS]),                 # ratio 0.75: the best other
        result("python", "NativeSoftmax (Python)", "log_softmax", a, 1, [1.0 * MS]),
        result("python", "PyTorch", "log_softmax", a, 1, [4.0 * MS]),             # 0.25
        result("python", "NativeSoftmax (Python)", "cross_entropy", a, 1, [3.0 * MS]),
        result("python", "PyTorch", "cross_entropy", a, 1, [12.0 * MS]),          # 0.25
        result("python", "NativeSoftmax (Python)", "softmax", [1, 10], 1, [20e-6]),
        result("python", "PyTorch", "softmax", [1, 10], 1, [4e-6]),               # 5.00
        result("python", "NativeSoftmax (Python)", "cross_entropy", [1, 10], 1, [30e-6]),
        result("python", "PyTorch", "cross_entropy", [1, 10], 1, [60e-6]),        # 0.50
        result("python", "NativeSoftmax (Python)", "softmax", a, 2, [0.9 * MS]),
        result("python", "PyTorch", "softmax", a, 2, [0.3 * MS]),                 # all threads: 3.00
        result("python", "NativeSoftmax (Python)", "softmax_bf16", a, 1, [0.6 * MS]),  # 1.2 / 0.6: 2.00×
        result("python", "NativeSoftmax (Python)", "softmax_f16", a, 1, [0.8 * MS]),   # 1.50×
        result("python", "NativeSoftmax (Python)", "cross_entropy_soft", a, 1, [2.0 * MS]),
        result("python", "PyTorch", "cross_entropy_soft", a, 1, [10.0 * MS]),     # soft targets: 0.20
    ]
    sweep = [result("cpp", library, op, [64 // c, c], t, [c * 1e-6])
             for c in (8, 64) for t in (1, 2)
             for library, op in (("NativeSoftmax", "softmax"), ("NativeSoftmax", "log_softmax"),
                                 ("NativeSoftmax", "cross_entropy"), ("oneDNN", "softmax"), ("memcpy", "copy"))]
    # In one process, 1 against 2 threads. softmax over two passes, pooled: rounds (1 ms, 0.6 ms),
    # (4 ms, 1 ms), (4 ms, 3 ms), ratios 0.6, 0.25, 0.75: median 0.60, while the ratio of the two
    # medians would be 1 ms / 4 ms = 0.25 and the separate processes above give 0.50; CPUs busy
    # in the 2-thread rounds 1.9, 1.2, 1.5: median 1.5. log_softmax
    # flagged wrong; cross-entropy has no in-process record (the separate processes above have one).
    scaling = [
        {"type": "meta", "producer": "cpp", "mode": "thread_scaling", "threads": 2, "nativesoftmax": "9.9.9",
         "isa": "avx2", "onednn": "0.0.0", "onednn_isa": "none", "compiler": "12"},
        thread_scaling("softmax", a, 2, [1.0 * MS, 4.0 * MS], [0.6 * MS, 1.0 * MS], cpus_busy=[1.9, 1.2]),
        thread_scaling("softmax", a, 2, [4.0 * MS], [3.0 * MS], cpus_busy=[1.5]),
        thread_scaling("log_softmax", a, 2, [1.0 * MS], [0.5 * MS], correct=False),
        thread_scaling("copy", a, 2, [0.5 * MS], [0.4 * MS], library="memcpy"),  # for reference: 0.80
    ]
    # Sorted before cpp-t1.jsonl: its meta must not stand for the comparison processes.
    (directory / "cpp-scaling-t2.jsonl").write_text("\n".join(json.dumps(r) for r in scaling) + "\n")
    (directory / "cpp-t1.jsonl").write_text("\n".join(json.dumps(r) for r in cpp + sweep) + "\n")
    (directory / "python-t1.jsonl").write_text("\n".join(json.dumps(r) for r in python) + "\n")


def has_matplotlib():
    return subprocess.run([sys.executable, "-c", "import matplotlib"], capture_output=True).returncode == 0


class ReportOnFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        results, cls.docs = Path(cls.tmp.name) / "results", Path(cls.tmp.name) / "docs"
        results.mkdir()
        fixture(results)
        cls.plots = has_matplotlib()
        command = [sys.executable, str(HERE / "write_report.py"), "--results", str(results), "--docs", str(cls.docs)]
        subprocess.run(command + ([] if cls.plots else ["--no-plots"]), check=True)
        cls.text = (cls.docs / "benchmarks.md").read_text()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def row(self, heading, first_cell):
        """The cells of the row starting with first_cell in the first table after heading."""
        section = self.text.split(heading, 1)[1]
        for line in section.splitlines():
            if line.startswith("| %s |" % first_cell):
                return [c.strip() for c in line.strip("|").split("|")]
        self.fail("no row %r after %r" % (first_cell, heading))

    def test_half_precision_rates_beside_float32(self):
        # 4×16 = 64 elements: 64 / 1.2 ms, 64 / 0.6 ms, 64 / 0.8 ms elements per second
        cells = self.row("## Half precision", "4×16")
        self.assertEqual(cells[1:], ["1", "5.33e+04", "1.07e+05", "**2.00×**", "8e+04", "**1.50×**"])

    def test_soft_targets_against_pytorch(self):
        cells = self.row("### Soft targets from Python", "4×16")
        self.assertTrue(cells[1].startswith("**0.20**"), cells)
        self.assertEqual(cells[2], "—")  # no 2-thread record

    def test_marked_generated(self):
        self.assertTrue(self.text.startswith("<!-- generated by ./build.sh bench — do not edit -->"))

    def test_best_other_is_the_largest_correct_ratio_with_pooled_medians(self):
        cells = self.row("against the best other library", "4×16")
        self.assertEqual(cells[1], "**0.75** vs PyTorch (1.2 ms / 1.6 ms)")
        self.assertEqual(cells[2], "**1.50** vs oneDNN (3 ms / 2 ms)")
        self.assertEqual(cells[3], "**0.25** (3 ms / 12 ms)")

    def test_wrong_result_is_flagged_and_left_out(self):
        self.assertIn("**XNNPACK softmax was flagged wrong**", self.text)
        self.assertNotIn("vs XNNPACK (1 ms / 250 µs)", self.text)
        self.assertIn("**✗ wrong**", self.row("## Every measurement", "1 | 4×16 | softmax | XNNPACK")[-1])
        self.assertNotIn("✗", self.row("## Every measurement", "1 | 4×16 | softmax | oneDNN")[-1])

    def test_memcpy_ratios(self):
        cells = self.row("against memcpy of the same bytes", "4×16")
        self.assertEqual(cells[1:], ["**2.00** (1 ms / 500 µs)", "**6.00** (3 ms / 500 µs)", "**8.00** (4 ms / 500 µs)"])

    def test_thread_ratio_is_the_median_of_in_process_per_round_ratios(self):
        cells = self.row("against itself with 1", "4×16 | softmax")
        self.assertEqual(cells[2], "**0.60** (×1.67; 1 ms / 4 ms; 1.50 CPUs busy; 3 rounds)")
        caption = self.text.split("against itself with 1", 1)[1].split("| shape |", 1)[0]
        self.assertIn("**in one process**", caption)
        self.assertIn("`nsm_set_num_threads`", caption)
        self.assertIn("**median over rounds of each round's N-thread / 1-thread ratio**", caption)

    def test_thread_reference_rows_only_where_measured(self):
        self.assertEqual(self.row("against itself with 1", "4×16 | *memcpy*")[2],
                         "**0.80** (×1.25; 400 µs / 500 µs; 2.00 CPUs busy; 1 round)")
        section = self.text.split("against itself with 1", 1)[1].split("###", 1)[0]
        self.assertNotIn("XNNPACK", section.split("| shape |", 1)[1])

    def test_thread_ratio_flagged_wrong(self):
        self.assertEqual(self.row("against itself with 1", "4×16 | log_softmax")[2], "✗ wrong (error 5.0e-01)")
        self.assertIn("**NativeSoftmax log_softmax was flagged wrong**", self.text)

    def test_missing_in_process_record_is_reported_not_replaced(self):
        # The separate-process records give cross-entropy 2 ms / 4 ms at 2 / 1 threads: not used.
        cells = self.row("against itself with 1", "4×16 | cross-entropy forward+backward")
        self.assertEqual(cells[2], "missing: no in-process record")
        self.assertIn("- **Missing from the Threads table** (no in-process record): "
                      "4×16 cross-entropy forward+backward at 2 threads.", self.text)

    def test_speedup_section_keeps_the_separate_processes(self):
        self.assertEqual(self.row("## Speed-up against threads", "4×16 | NativeSoftmax | softmax")[3:],
                         ["×1.00", "×2.00"])

    def test_machine_section_from_the_comparison_process(self):
        self.assertEqual(self.row("## Machine and libraries", "oneDNN")[1],
                         "2.6.3 (Debian libdnnl2 ?, OpenMP), ISA avx2")

    def test_all_threads_against_torch(self):
        cells = self.row("against PyTorch with all threads", "4×16")
        self.assertEqual(cells[1], "**3.00** (900 µs / 300 µs)")
        self.assertEqual(cells[4], "**1.25** vs XNNPACK (500 µs / 400 µs)")

    def test_per_call(self):
        self.assertEqual(self.row("### Per call from Python", "softmax")[2:], ["20 µs", "4 µs", "**5.00**"])
        self.assertEqual(self.row("### Per call from Python", "cross-entropy forward+backward")[2:],
                         ["30 µs", "60 µs", "**0.50**"])

    def test_plots(self):
        if not self.plots:
            self.skipTest("matplotlib is not installed")
        for name in ("benchmarks-throughput.png", "benchmarks-threads.png"):
            self.assertEqual((self.docs / name).read_bytes()[:8], b"\x89PNG\r\n\x1a\n", name)


class MalformedThreadScaling(unittest.TestCase):
    """A thread_scaling record that does not say it comes from one process, or whose rounds at the
    two thread counts do not pair up, is refused with a message rather than tabled."""

    def report(self, record):
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results"
            results.mkdir()
            fixture(results)
            (results / "cpp-scaling-t2.jsonl").write_text(json.dumps(record) + "\n")
            return subprocess.run([sys.executable, str(HERE / "write_report.py"), "--results", str(results),
                                   "--docs", str(Path(tmp) / "docs"), "--no-plots"], capture_output=True, text=True)

    def test_not_in_process(self):
        for in_process in (None, False):
            r = self.report(thread_scaling("softmax", [4, 16], 2, [MS], [MS], in_process=in_process))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('does not say "in_process": true', r.stderr)

    def test_unpaired_rounds(self):
        r = self.report(thread_scaling("softmax", [4, 16], 2, [MS, MS], [MS]))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("2 rounds at 1 thread(s), 1 at 2", r.stderr)


if __name__ == "__main__":
    unittest.main()
