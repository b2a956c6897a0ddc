using NativeSoftmax.Threading;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// How many threads a call may use, the calling thread included (the C ABI's
    /// nsm_get_num_threads / nsm_set_num_threads). A call splits its rows, and the columns of a
    /// long row, into blocks that depend only on the shape, so results are bitwise identical for
    /// every thread count; work too small to gain from a thread stays on the calling thread.
    /// </summary>
    /// <value>1 to 1024. Setting 0 restores the default: the environment variable
    /// NATIVESOFTMAX_NUM_THREADS when it is a whole number in [1, 1024] in decimal digits alone, else
    /// <see cref="Environment.ProcessorCount"/> (the CPUs this process may run on).</value>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value below 0 or above 1024.</exception>
    /// <remarks>The library's worker threads are started on the first call that uses them and
    /// serve one call at a time: a call made while another thread's call is using them runs on
    /// its own thread alone, so callers that already run many threads are not oversubscribed.</remarks>
    public static int ThreadCount
    {
        get => WorkerPool.ThreadCount;
        set
        {
            if (!WorkerPool.TrySetThreadCount(value, out Failure? failure))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, failure.Message);
            }
        }
    }
}
