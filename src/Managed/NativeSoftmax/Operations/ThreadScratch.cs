using System.Runtime.InteropServices;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Operations;

/// <summary>
/// Per-thread scratch: allocated on a thread's first call that needs it and grown when a call
/// needs more, never per call (and never on the stack, so a call on a 16 KiB stack works). Three
/// slots: <see cref="Block"/> for the float32 rows of one block of a half-precision operation (on
/// whichever thread runs the block), <see cref="Call"/> for what one whole half-precision call
/// widens on its calling thread (the .NET Half API's weights, per-row upstream gradients and
/// losses), so a block that runs on the calling thread does not overwrite the call's, and
/// <see cref="Tiles"/> for the lane tiles of short rows (<see cref="Kernels.LaneTile{TVec, T}"/>;
/// they run inside a half-precision block over its <see cref="Block"/>: at 512 bits a float32 tile
/// is 4 KiB, and two or three of them on the stack left a 16 KiB thread too little). A slot is
/// freed by its finalizer once its thread has ended and the runtime collects it. In the C library
/// (<see cref="CollectsEndedThreads"/>), whose runtime allocates almost nothing, no collection
/// might come for thousands of short-lived threads, each leaving its scratch behind (4 MiB after
/// one bfloat16 row of 2^20 classes): there an allocation that would take the scratch of the
/// other threads and its own past <see cref="CollectAboveBytes"/> (or, with more live scratch,
/// past twice what was held with it after the last collection) first collects, and waits for the
/// finalizers, on a helper thread (the caller's stack may be 16 KiB; one collection at a time). An
/// allocation that alone is that large does not collect: collecting could not bring the total
/// under, and the largest (a 16-bit Jacobian's block, given back after each call by
/// <see cref="TrimBlock"/>) would collect on every call.
/// </summary>
internal static unsafe class ThreadScratch
{
    /// <summary>Scratch larger than this (64 MiB) is given back after its call, so that a huge
    /// one-off call (a large Jacobian) does not hold its memory for the thread's life.</summary>
    public const long KeptBytes = 64L << 20;

    /// <summary>The least scratch of all threads (64 MiB) above which an allocation first
    /// collects what threads that have ended left.</summary>
    public const long CollectAboveBytes = 64L << 20;

    private static long s_collectAbove = CollectAboveBytes;

    /// <summary>Whether a growing allocation may collect what ended threads left (above). Set by
    /// the C library at its start: its runtime runs this library's code alone, so nothing else
    /// would collect, and no finalizer but this library's own can be waited for. Off in a .NET
    /// program, whose own allocations collect as usual and whose finalizers might need a lock
    /// that the calling thread holds; and in effect off in a child forked from the process that
    /// set it, which has no finalizer thread to wait for (nor the parent's other threads, which
    /// a collection would try to stop).</summary>
    internal static bool CollectsEndedThreads
    {
        get => s_collectingProcess != 0;
        set => s_collectingProcess = value ? Environment.ProcessId : 0; // cached from here on, so read when set
    }

    private static int s_collectingProcess; // the process that set CollectsEndedThreads; 0 when off
    private static int s_collecting; // 1 while a collection runs: the others do not start one

    [ThreadStatic]
    private static Buffer? t_block;

    [ThreadStatic]
    private static Buffer? t_call;

    [ThreadStatic]
    private static Buffer? t_tiles;

    /// <summary>At least <paramref name="count"/> floats of this thread's block scratch.</summary>
    public static float* Block(long count) => (t_block ??= new()).Reserve(count);

    /// <summary>At least <paramref name="count"/> floats of this thread's call scratch.</summary>
    public static float* Call(long count) => (t_call ??= new()).Reserve(count);

    /// <summary>At least <paramref name="count"/> elements of <typeparamref name="T"/> of this thread's tile scratch.</summary>
    public static T* Tiles<T>(long count)
        where T : unmanaged =>
        (T*)(t_tiles ??= new()).Reserve((count * sizeof(T) + sizeof(float) - 1) / sizeof(float));

    /// <summary>Gives back this thread's scratch when it is above <see cref="KeptBytes"/>.</summary>
    public static void TrimBlock() => t_block?.Trim();

    /// <summary>The native memory every thread's scratch holds now, in bytes: for tests that a
    /// thread's scratch is freed once the thread has ended.</summary>
    internal static long HeldBytes => Interlocked.Read(ref Buffer.Held);

    /// <summary>How many times any thread's scratch has been allocated or grown: for tests that a
    /// thread's later calls reuse its scratch.</summary>
    internal static long Allocations => Interlocked.Read(ref Buffer.Grown);

    private sealed class Buffer
    {
        /// <summary>The bytes all buffers hold (<see cref="HeldBytes"/>).</summary>
        public static long Held;

        /// <summary>Allocations of any buffer (<see cref="Allocations"/>).</summary>
        public static long Grown;

        private float* _start;
        private long _count;

        public float* Reserve(long count)
        {
            if (count > _count)
            {
                // Grow by half again, so a thread whose calls grow slowly reallocates rarely.
                long grown = Math.Max(count, _count + _count / 2);
                if (s_collectingProcess != 0)
                {
                    CollectIfOver(grown * sizeof(float) - _count * sizeof(float));
                }
                Release();
                _start = Allocate(grown);
                if (_start == null && grown > count)
                {
                    grown = count; // what the call needs, without the room to grow
                    _start = Allocate(grown);
                }
                if (_start == null)
                {
                    throw new OutOfMemoryException($"the system refused {grown * sizeof(float)} bytes of working memory (scratch)");
                }
                _count = grown;
                Interlocked.Add(ref Held, grown * sizeof(float));
                Interlocked.Increment(ref Grown);
            }
            return _start;
        }

        public void Trim()
        {
            if (_count * sizeof(float) > KeptBytes)
            {
                Release();
            }
        }

        /// <summary>
        /// Collects what ended threads left when an allocation adding <paramref name="added"/>
        /// bytes (its size less what its buffer held) would take the scratch of all threads past
        /// the threshold, then sets the next threshold: twice what is held with the allocation,
        /// at least <see cref="CollectAboveBytes"/>, so that live threads' own scratch does not make
        /// every allocation collect. Not for an allocation that alone reaches the threshold, not
        /// while another thread collects, and not in a forked child (no finalizer thread there).
        /// </summary>
        private static void CollectIfOver(long added)
        {
            long above = Interlocked.Read(ref s_collectAbove);
            if (added >= above || Interlocked.Read(ref Held) + added <= above
                || Interlocked.CompareExchange(ref s_collecting, 1, 0) != 0)
            {
                return;
            }
            try
            {
                if (ProcessId.Current() == s_collectingProcess && Interlocked.Read(ref Held) + added > Interlocked.Read(ref s_collectAbove))
                {
                    // On a thread of its own: a collection walks stacks, and the caller's may be
                    // 16 KiB. The caller waits in a managed wait, where the collection can stop it.
                    var collector = new Thread(static () =>
                    {
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                    }, maxStackSize: 1 << 20)
                    {
                        IsBackground = true,
                        Name = "nativesoftmax-collect",
                    };
                    collector.Start();
                    collector.Join();
                    Interlocked.Exchange(ref s_collectAbove, Math.Max(CollectAboveBytes, 2 * (Interlocked.Read(ref Held) + added)));
                }
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                // No thread to collect with: the call goes on without collecting (a later one may).
            }
            finally
            {
                Volatile.Write(ref s_collecting, 0);
            }
        }

        /// <summary><paramref name="count"/> floats of native memory, or null when the system refuses them.</summary>
        private static float* Allocate(long count)
        {
            try
            {
                return (float*)NativeMemory.Alloc((nuint)count, sizeof(float));
            }
            catch (OutOfMemoryException)
            {
                return null;
            }
        }

        private void Release()
        {
            NativeMemory.Free(_start);
            Interlocked.Add(ref Held, -_count * sizeof(float));
            _start = null;
            _count = 0;
        }

        ~Buffer() => Release();
    }
}
