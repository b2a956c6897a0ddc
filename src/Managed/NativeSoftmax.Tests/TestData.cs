using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>
/// A row-major [rows × cols] matrix with leading dimension ld, stored with a guard tail: the
/// padding between rows and the <see cref="Guard"/> elements after the last row hold a sentinel,
/// so a kernel that writes outside its matrix is caught by <see cref="AssertPaddingIntact"/>.
/// </summary>
internal sealed class Matrix<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>More than the widest vector (16 floats), so a full-vector overrun lands in it.</summary>
    public const int Guard = 17;

    /// <summary>A value no kernel computes from the inputs used in these tests.</summary>
    public static readonly T Sentinel = T.CreateTruncating(-12345.5);

    public Matrix(int rows, int cols, int ld)
    {
        Rows = rows;
        Cols = cols;
        Ld = ld;
        Data = new T[Extent + Guard];
        Array.Fill(Data, Sentinel);
    }

    private Matrix(int rows, int cols, int ld, T[] data)
    {
        (Rows, Cols, Ld, Data) = (rows, cols, ld, data);
    }

    /// <summary>The same memory seen with another row count (e.g. rows = 0 over a real buffer).</summary>
    public static Matrix<T> View(Matrix<T> matrix, int rows) => new(rows, matrix.Cols, matrix.Ld, matrix.Data);

    public int Rows { get; }
    public int Cols { get; }
    public int Ld { get; }
    public T[] Data { get; }

    /// <summary>Elements the matrix spans: (rows − 1)·ld + cols.</summary>
    public int Extent => Rows == 0 ? 0 : (Rows - 1) * Ld + Cols;

    /// <summary>The span the API is given: the extent and nothing more.</summary>
    public Span<T> Span => Data.AsSpan(0, Extent);

    public T this[int r, int c]
    {
        get => Data[r * Ld + c];
        set => Data[r * Ld + c] = value;
    }

    public double[] Row(int r) => Enumerable.Range(0, Cols).Select(c => double.CreateTruncating(this[r, c])).ToArray();

    public double[][] RowsAsDouble() => Enumerable.Range(0, Rows).Select(Row).ToArray();

    public Matrix<T> Clone()
    {
        var copy = new Matrix<T>(Rows, Cols, Ld);
        Data.CopyTo(copy.Data, 0);
        return copy;
    }

    /// <summary>Fills element (r, c) with f(r, c) rounded to T.</summary>
    public Matrix<T> Fill(Func<int, int, double> f)
    {
        for (int r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Cols; c++)
            {
                this[r, c] = T.CreateTruncating(f(r, c));
            }
        }
        return this;
    }

    /// <summary>The padding between rows and the guard tail still hold the sentinel.</summary>
    public void AssertPaddingIntact(string context)
    {
        for (int i = 0; i < Data.Length; i++)
        {
            bool inMatrix = i < Extent && i % Ld < Cols;
            if (!inMatrix && Data[i] != Sentinel)
            {
                Assert.Fail($"{context}: element {i} outside the [{Rows} x {Cols}, ld {Ld}] matrix was overwritten with {Data[i]}.");
            }
        }
    }

    /// <summary>Every element, matrix included, still holds the sentinel (nothing was written).</summary>
    public void AssertUntouched(string context)
    {
        for (int i = 0; i < Data.Length; i++)
        {
            if (Data[i] != Sentinel)
            {
                Assert.Fail($"{context}: element {i} was written ({Data[i]}) although the call should write nothing.");
            }
        }
    }
}

/// <summary>Seeded inputs. Every generator takes the seed, which the tests put in their messages.</summary>
internal static class TestData
{
    public static Matrix<T> Uniform<T>(int seed, int rows, int cols, int ld, double low, double high)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(seed);
        return new Matrix<T>(rows, cols, ld).Fill((_, _) => low + (high - low) * random.NextDouble());
    }

    /// <summary>Probabilities (a softmax of logits in [−8, 8], rounded to T), as a forward pass gives them.</summary>
    public static Matrix<T> Probabilities<T>(int seed, int rows, int cols, int ld)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double[][] z = Uniform<double>(seed, rows, cols, cols, -8, 8).RowsAsDouble();
        double[][] o = z.Select(Reference.Softmax).ToArray();
        return new Matrix<T>(rows, cols, ld).Fill((r, c) => o[r][c]);
    }

    /// <summary>Log-probabilities (a log_softmax of logits in [−8, 8], rounded to T).</summary>
    public static Matrix<T> LogProbabilities<T>(int seed, int rows, int cols, int ld)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double[][] z = Uniform<double>(seed, rows, cols, cols, -8, 8).RowsAsDouble();
        double[][] y = z.Select(Reference.LogSoftmax).ToArray();
        return new Matrix<T>(rows, cols, ld).Fill((r, c) => y[r][c]);
    }

    /// <summary>Labels in [0, cols), about one in five replaced by ignoreIndex when asked.</summary>
    public static long[] Labels(int seed, int rows, int cols, long? ignoreIndex = null)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows)
            .Select(_ => ignoreIndex is long ignore && random.Next(5) == 0 ? ignore : random.Next(cols))
            .Select(t => (long)t).ToArray();
    }

    public static T[] Vector<T>(int seed, int length, double low, double high)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => T.CreateTruncating(low + (high - low) * random.NextDouble())).ToArray();
    }

    public static double[] AsDouble<T>(this T[] values)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> => values.Select(double.CreateTruncating).ToArray();

    public static string Name<T>() => typeof(T) == typeof(float) ? "float32" : "float64";
}
