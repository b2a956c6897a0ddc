using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;

namespace NativeSoftmax.Threading;

/// <summary>
/// The library's worker threads: one pool per process, started on the first call that is worth
/// splitting, which then runs the items of a job on the calling thread and up to
/// <c>ThreadCount − 1</c> workers.
/// </summary>
/// <remarks>
/// <para>Items are claimed one at a time from a shared counter, so which thread runs an item
/// depends on timing, but what an item computes and where it writes never does: a caller that
/// adds per-item results in item order gets the same bits for every thread count.</para>
/// <para>Rules: one job at a time. A call that finds the pool busy (another thread of the process
/// is running a job) runs inline on its own thread rather than queueing, so a caller that already
/// runs many threads never gets more than its own threads plus one pool's worth. In a child
/// process forked after the workers started (the workers do not exist there), every call runs
/// inline: it never waits for a worker that is gone. A job's caller holds the pool until it has
/// read the job's results (<see cref="Release"/>), so no other job writes over them.</para>
/// <para>Waking: each worker sleeps on its own event. The caller sets the events of the workers
/// the job may use and starts on the items at once; a worker joins the job only while it is
/// open (until its caller runs out of items), so the caller waits for the workers still running
/// an item, never for one that has not woken yet. A worker that wakes late finds the job closed,
/// or joins the next one.</para>
/// </remarks>
internal static unsafe class WorkerPool
{
    /// <summary>The most threads one call may use (a sanity bound on settings).</summary>
    public const int MaxThreads = 1024;

    /// <summary>The environment variable that sets the default thread count.</summary>
    public const string ThreadCountVariable = "NATIVESOFTMAX_NUM_THREADS";

    private static int s_threadCount = DefaultThreadCount();

    // The job in flight: written by its caller before it opens the job, read by the workers that
    // join it while it is open.
    private static delegate*<void*, long, double*, void> s_body;
    private static delegate*<void*, bool> s_join; // null, or what a worker calls before it takes items
    private static long s_stride; // results per item
    private static void* s_state;
    private static long s_count;
    private static long s_next;
    private static int s_helpers; // workers 0 .. s_helpers − 1 may join the job
    private static long s_generation; // the job's number: a worker joins each job once
    private static int s_open; // 1 from the job's publication until its caller has run out of items
    private static int s_active; // workers inside TryJoin: the caller waits for these alone
    private static int s_faulted; // an item threw: Faulted, or OutOfMemory when it ran out of memory

    private static int s_busy; // 1 while a caller owns the pool
    private static int s_ownerProcess; // the process that started the workers; 0 before any
    private static readonly List<ManualResetEventSlim> s_wakes = []; // one per worker, by index

    private static double* s_results; // the job's per-item results
    private static long s_resultsLength;

    /// <summary>Threads a call may use, the caller's included: at least 1.</summary>
    public static int ThreadCount => Volatile.Read(ref s_threadCount);

    /// <summary>Sets <see cref="ThreadCount"/>; 0 restores the default (the environment variable,
    /// else every core this process may run on).</summary>
    public static bool TrySetThreadCount(int count, [NotNullWhen(false)] out Failure? failure)
    {
        if (count < 0 || count > MaxThreads)
        {
            failure = new Failure(Status.InvalidArgument, "num_threads",
                $"num_threads must be in [1, {MaxThreads}], or 0 for the default; got {count}.");
            return false;
        }
        Volatile.Write(ref s_threadCount, count == 0 ? DefaultThreadCount() : count);
        failure = null;
        return true;
    }

    /// <summary>
    /// <c>NATIVESOFTMAX_NUM_THREADS</c> when it is a whole number in [1, MaxThreads] written in
    /// decimal digits alone (no sign, no spaces: a value with them is ignored, as the header says
    /// of any other value), else the number of cores this process may run on (its CPU affinity
    /// mask and cgroup quota, as <see cref="Environment.ProcessorCount"/> reports them on Linux).
    /// </summary>
    public static int DefaultThreadCount()
    {
        string? text = Environment.GetEnvironmentVariable(ThreadCountVariable);
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) && count >= 1 && count <= MaxThreads)
        {
            return count;
        }
        return Math.Clamp(Environment.ProcessorCount, 1, MaxThreads);
    }

    /// <summary>
    /// Runs <c>body(state, i, results + i·resultsPerItem)</c> for every i in [0, count) on up to
    /// <paramref name="threads"/> threads, the caller's included, and returns once all have run;
    /// each item writes its <paramref name="resultsPerItem"/> results to the slot it is given, and
    /// <paramref name="results"/> then points at all of them, in item order. Returns true still
    /// holding the pool, so that no other caller's job overwrites the results while they are read:
    /// the caller must call <see cref="Release"/> once it has read them (in a <c>finally</c>).
    /// Returns false, having run nothing and holding nothing, when the job should run inline
    /// instead: one thread asked for, the pool busy with another caller's job, a forked child, no
    /// worker thread that the system would start, or no memory for the results.
    /// </summary>
    /// <exception cref="InvalidOperationException">An item threw, on any thread (a bug); the
    /// other threads stop taking items and are waited for first, and the pool is released.</exception>
    /// <exception cref="OutOfMemoryException">An item ran out of memory, on any thread; as above.</exception>
    public static bool TryRun(delegate*<void*, long, double*, void> body, void* state, long count, int threads,
        long resultsPerItem, out double* results) =>
        TryRun(body, null, state, count, threads, resultsPerItem, out results);

    /// <summary>
    /// As the overload above, where each worker first calls <c>join(state)</c> and takes no item
    /// when it returns false (the others, the caller at least, take them all): for what a thread
    /// must have before it runs an item, such as its scratch.
    /// </summary>
    public static bool TryRun(delegate*<void*, long, double*, void> body, delegate*<void*, bool> join, void* state, long count,
        int threads, long resultsPerItem, out double* results)
    {
        results = null;
        if (threads <= 1 || count <= 1 || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            return false;
        }
        bool held = false;
        try
        {
            int helpers = StartWorkers((int)Math.Min(threads - 1, count - 1));
            if (helpers == 0 || !TryReserveResults(count * resultsPerItem))
            {
                return false;
            }
            s_body = body;
            s_join = join;
            s_state = state;
            s_count = count;
            s_stride = resultsPerItem;
            s_next = 0;
            s_faulted = 0;
            s_helpers = helpers;
            s_generation++;
            Interlocked.Exchange(ref s_open, 1); // publishes the fields above to the workers that see it
            try
            {
                for (int worker = 0; worker < helpers; worker++)
                {
                    s_wakes[worker].Set();
                }
                RunItems();
            }
            catch (Exception exception)
            {
                // Stop handing out items; the workers inside the job are waited for below, before
                // the job's state (and the caller's frame it points into) goes away.
                Fault(exception);
            }
            // Every item is taken. Close the job, then wait for the workers inside it: those still
            // running an item, and any that woke just now and are about to see it closed. A worker
            // that has not woken yet never touches this job (TryJoin), so it is not waited for.
            Interlocked.Exchange(ref s_open, 0);
            var spin = new SpinWait();
            while (Volatile.Read(ref s_active) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            if (s_faulted == OutOfMemory)
            {
                throw new OutOfMemoryException("an item of a parallel job ran out of memory");
            }
            if (s_faulted != 0)
            {
                throw new InvalidOperationException("an item of a parallel job failed");
            }
            results = s_results;
            held = true;
            return true;
        }
        finally
        {
            if (!held)
            {
                Release();
            }
        }
    }

    /// <summary>Gives the pool back after a <c>TryRun</c> that returned true, once its
    /// results have been read.</summary>
    public static void Release()
    {
        Debug.Assert(Volatile.Read(ref s_busy) == 1, "Release without a TryRun that returned true");
        Volatile.Write(ref s_busy, 0);
    }

    private static void RunItems()
    {
        delegate*<void*, long, double*, void> body = s_body;
        void* state = s_state;
        long count = s_count, stride = s_stride;
        double* results = s_results;
        for (long i = Interlocked.Increment(ref s_next) - 1; i < count; i = Interlocked.Increment(ref s_next) - 1)
        {
            body(state, i, results + i * stride);
        }
    }

    /// <summary>
    /// Runs items of the open job, if there is one this worker may join and has not yet joined.
    /// The increment of <c>s_active</c> comes before the read of <c>s_open</c> (both full fences),
    /// and the caller closes before it reads <c>s_active</c>: so either the caller waits for this
    /// worker, or this worker sees the job closed and reads nothing of it.
    /// </summary>
    private static void TryJoin(int index, ref long joined)
    {
        Interlocked.Increment(ref s_active);
        if (Volatile.Read(ref s_open) != 0 && s_generation != joined && index < s_helpers)
        {
            joined = s_generation;
            try
            {
                if (s_join == null || s_join(s_state))
                {
                    RunItems();
                }
            }
            catch (Exception exception)
            {
                // The caller reports it; an exception must not end the worker (nor the process).
                Fault(exception);
            }
        }
        Interlocked.Decrement(ref s_active);
    }

    private const int Faulted = 1, OutOfMemory = 2; // values of s_faulted

    /// <summary>Records that an item threw, and stops handing out items.</summary>
    private static void Fault(Exception exception)
    {
        Volatile.Write(ref s_faulted, exception is OutOfMemoryException ? OutOfMemory : Faulted);
        Interlocked.Exchange(ref s_next, long.MaxValue / 2);
    }

    private static void WorkerLoop(int index, ManualResetEventSlim wake)
    {
        long joined = 0;
        while (true)
        {
            wake.Wait();
            // Reset before looking for the job: a job opened after this point sets the event again.
            wake.Reset();
            Interlocked.MemoryBarrier();
            TryJoin(index, ref joined);
        }
    }

    /// <summary>
    /// Starts workers until <paramref name="wanted"/> run in this process, and returns how many
    /// the job may use: <paramref name="wanted"/>, fewer when the system refuses a thread (a
    /// process or container thread limit: the job runs on the threads that exist, and a later
    /// call tries again, as when there is no memory for a thread's objects), 0 in a forked child
    /// (the workers stayed in the parent). Never throws: a job may come after a first pass has
    /// written its output.
    /// </summary>
    private static int StartWorkers(int wanted)
    {
        int process = ProcessId.Current();
        if (s_ownerProcess != 0 && s_ownerProcess != process)
        {
            return 0;
        }
        s_ownerProcess = process;
        while (s_wakes.Count < wanted)
        {
            int index = s_wakes.Count;
            ManualResetEventSlim? wake = null;
            try
            {
                // Room in the list first: once started, a worker must be in it.
                s_wakes.EnsureCapacity(index + 1);
                var created = new ManualResetEventSlim(false);
                wake = created;
                var worker = new Thread(() => WorkerLoop(index, created), maxStackSize: 256 * 1024)
                {
                    IsBackground = true,
                    Name = $"nativesoftmax-{index + 1}",
                };
                worker.Start();
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                wake?.Dispose();
                break;
            }
            s_wakes.Add(wake);
        }
        return Math.Min(wanted, s_wakes.Count);
    }

    /// <summary>Room for <paramref name="length"/> results (grown, never shrunk: no allocation per call).</summary>
    private static bool TryReserveResults(long length)
    {
        if (length <= s_resultsLength)
        {
            return true;
        }
        void* grown;
        try
        {
            grown = NativeMemory.Realloc(s_results, (nuint)length * sizeof(double));
        }
        catch (OutOfMemoryException)
        {
            return false; // the job runs inline, needing no results buffer
        }
        s_results = (double*)grown;
        s_resultsLength = length;
        return true;
    }
}
