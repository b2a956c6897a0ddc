using System.Numerics;
using NativeSoftmax.Kernels;

namespace NativeSoftmax.Tests;

/// <summary>
/// Rows that prefetch the next row of their block while computing their exponentials
/// (<see cref="NextRowPrefetch"/>: rows of at least 1 KiB in matrices of at least 4 MiB, the
/// smallest shapes that take that path): softmax, log_softmax and cross-entropy (hard labels and soft
/// targets) against
/// the float64 reference, and bit for bit against the same rows computed alone (a one-row call
/// prefetches nothing).
/// </summary>
public class NextRowPrefetchTests
{
    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void RowsThatPrefetchMatchTheReferenceAndTheSameRowsAlone(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            Run<float>(width);
        }
        else
        {
            Run<double>(width);
        }
    }

    private static unsafe void Run<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        // 1003 columns: not a whole number of vectors at any width, so the overlapping tail runs too.
        int cols = 1003, ld = cols + 5;
        int rows = (int)(NextRowPrefetch.FromMatrixBytes / (ld * sizeof(T))) + 2;
        Assert.True((long)rows * ld * sizeof(T) >= NextRowPrefetch.FromMatrixBytes && cols * sizeof(T) >= NextRowPrefetch.FromRowBytes);
        string context = $"width={width} dtype={TestData.Name<T>()} {rows} x {cols}";
        bool isFloat = Expect.IsFloat<T>();
        Matrix<T> logits = TestData.Uniform<T>(rows * 7 + cols, rows, cols, ld, -8, 8);
        double[][] z = logits.RowsAsDouble();
        long[] labels = Enumerable.Range(0, rows).Select(r => (long)((r * 7919 + 3) % cols)).ToArray();

        var probabilities = new Matrix<T>(rows, cols, ld);
        Ops.Softmax(width, logits, probabilities);
        Expect.Rows(probabilities, z.Select(Reference.Softmax).ToArray(),
            (_, _, e) => (isFloat ? 1e-6 : 2e-15) * Math.Abs(e) + 1e-300, "softmax " + context);

        var logProbabilities = new Matrix<T>(rows, cols, ld);
        Ops.LogSoftmax(width, logits, logProbabilities);
        Expect.Rows(logProbabilities, z.Select(Reference.LogSoftmax).ToArray(),
            (_, _, e) => (isFloat ? 2e-6 : 1e-15) * (1 + Math.Abs(e)), "log_softmax " + context);

        var options = new CrossEntropyOptions { Reduction = Reduction.None };
        var loss = new T[rows];
        var grad = new Matrix<T>(rows, cols, ld);
        Ops.CrossEntropy(width, logits, labels, null, options, loss, grad);
        Reference.LossResult expected = Reference.HardCrossEntropy(z, labels, null, options);
        for (int r = 0; r < rows; r++)
        {
            Expect.Close(expected.RowLosses[r], double.CreateTruncating(loss[r]),
                (isFloat ? 2e-6 : 3e-15) * (expected.TargetAbsMass[r] + expected.RowLossScale[r]), "cross_entropy loss " + context, r);
        }
        Expect.Rows(grad, expected.Grad, (r, _, _) => (isFloat ? 1e-6 : 3e-15) * Math.Abs(expected.Scale) * expected.TargetAbsMass[r],
            "cross_entropy grad " + context);

        Matrix<T> targets = TestData.Uniform<T>(rows * 11 + cols, rows, cols, ld, 0, 2.0 / cols);
        var softLoss = new T[rows];
        var softGrad = new Matrix<T>(rows, cols, ld);
        Ops.SoftCrossEntropy(width, logits, targets, null, options, softLoss, softGrad);
        Reference.LossResult softExpected = Reference.SoftCrossEntropy(z, targets.RowsAsDouble(), null, options);
        for (int r = 0; r < rows; r++)
        {
            Expect.Close(softExpected.RowLosses[r], double.CreateTruncating(softLoss[r]),
                (isFloat ? 2e-6 : 3e-15) * (softExpected.TargetAbsMass[r] + softExpected.RowLossScale[r]), "cross_entropy_soft loss " + context, r);
        }
        Expect.Rows(softGrad, softExpected.Grad, (r, _, _) => (isFloat ? 1e-6 : 3e-15) * Math.Abs(softExpected.Scale) * softExpected.TargetAbsMass[r],
            "cross_entropy_soft grad " + context);

        // Each row alone: the same bits.
        var row = new Matrix<T>(1, cols, cols);
        var alone = new Matrix<T>(1, cols, cols);
        var rowTarget = new Matrix<T>(1, cols, cols);
        var rowLoss = new T[1];
        long[] rowLabel = new long[1];
        for (int r = 0; r < rows; r++)
        {
            row.Fill((_, c) => double.CreateTruncating(logits[r, c]));
            rowLabel[0] = labels[r];
            Ops.Softmax(width, row, alone);
            AssertSameRow(probabilities, alone, r, "softmax " + context);
            Ops.LogSoftmax(width, row, alone);
            AssertSameRow(logProbabilities, alone, r, "log_softmax " + context);
            Ops.CrossEntropy(width, row, rowLabel, null, options, rowLoss, alone);
            AssertSameRow(grad, alone, r, "cross_entropy grad " + context);
            Assert.True(rowLoss[0].Equals(loss[r]), $"cross_entropy loss {context}: row {r} is {loss[r]} in the matrix, {rowLoss[0]} alone");
            rowTarget.Fill((_, c) => double.CreateTruncating(targets[r, c]));
            Ops.SoftCrossEntropy(width, row, rowTarget, null, options, rowLoss, alone);
            AssertSameRow(softGrad, alone, r, "cross_entropy_soft grad " + context);
            Assert.True(rowLoss[0].Equals(softLoss[r]), $"cross_entropy_soft loss {context}: row {r} is {softLoss[r]} in the matrix, {rowLoss[0]} alone");
        }
    }

    private static void AssertSameRow<T>(Matrix<T> matrix, Matrix<T> alone, int r, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int c = 0; c < matrix.Cols; c++)
        {
            if (!matrix[r, c].Equals(alone[0, c]))
            {
                Assert.Fail($"{context}: row {r}, column {c} is {matrix[r, c]} in the matrix, {alone[0, c]} alone");
            }
        }
    }
}
