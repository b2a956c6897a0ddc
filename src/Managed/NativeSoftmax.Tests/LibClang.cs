using System.Runtime.InteropServices;

namespace NativeSoftmax.Tests;

/// <summary>
/// The few functions of libclang's C API (clang-c/Index.h) that <see cref="NativeHeader"/> uses,
/// from Debian's libclang-14.so.1 (package libclang1-14, which build.sh installs; the Python
/// conformance test reads the header through the same library with python3-clang-14).
/// </summary>
internal static unsafe partial class LibClang
{
    private const string Library = "libclang-14.so.1";

    public enum CursorKind
    {
        StructDecl = 2,
        FieldDecl = 6,
        FunctionDecl = 8,
        VarDecl = 9,
        InitListExpr = 119,
        MacroDefinition = 501,
    }

    /// <summary>CXTypeKind values of canonical types.</summary>
    public enum TypeKind
    {
        Void = 2,
        CharU = 4,
        UChar = 5,
        UShort = 8,
        UInt = 9,
        ULong = 10,
        ULongLong = 11,
        CharS = 13,
        SChar = 14,
        Short = 16,
        Int = 17,
        Long = 18,
        LongLong = 19,
        Float = 21,
        Double = 22,
        Pointer = 101,
        Record = 105,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Cursor
    {
        public CursorKind Kind;
        public int XData;
        public nint Data0, Data1, Data2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Type
    {
        public TypeKind Kind;
        public nint Data0, Data1;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct SourceLocation
    {
        public nint Data0, Data1;
        public uint IntData;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CXString
    {
        public nint Data;
        public uint Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct UnsavedFile
    {
        public byte* Filename;
        public byte* Contents;
        public nuint Length;
    }

    public const uint DetailedPreprocessingRecord = 0x01;
    public const int DiagnosticError = 3;
    private const int EvalInt = 1, EvalFloat = 2, EvalStrLiteral = 4;

    [LibraryImport(Library)] public static partial nint clang_createIndex(int excludeDeclarationsFromPch, int displayDiagnostics);
    [LibraryImport(Library)] public static partial void clang_disposeIndex(nint index);
    [LibraryImport(Library)]
    public static partial nint clang_parseTranslationUnit(nint index, byte* sourceFilename, byte** commandLineArgs,
        int numCommandLineArgs, UnsavedFile* unsavedFiles, uint numUnsavedFiles, uint options);
    [LibraryImport(Library)] public static partial void clang_disposeTranslationUnit(nint unit);
    [LibraryImport(Library)] public static partial uint clang_getNumDiagnostics(nint unit);
    [LibraryImport(Library)] public static partial nint clang_getDiagnostic(nint unit, uint index);
    [LibraryImport(Library)] public static partial int clang_getDiagnosticSeverity(nint diagnostic);
    [LibraryImport(Library)] public static partial CXString clang_formatDiagnostic(nint diagnostic, uint options);
    [LibraryImport(Library)] public static partial void clang_disposeDiagnostic(nint diagnostic);
    [LibraryImport(Library)] public static partial Cursor clang_getTranslationUnitCursor(nint unit);
    [LibraryImport(Library)]
    public static partial uint clang_visitChildren(Cursor parent, delegate* unmanaged<Cursor, Cursor, nint, int> visitor, nint clientData);
    [LibraryImport(Library)] public static partial CXString clang_getCursorSpelling(Cursor cursor);
    [LibraryImport(Library)] public static partial SourceLocation clang_getCursorLocation(Cursor cursor);
    [LibraryImport(Library)] public static partial int clang_Location_isFromMainFile(SourceLocation location);
    [LibraryImport(Library)] public static partial uint clang_Cursor_isMacroFunctionLike(Cursor cursor);
    [LibraryImport(Library)] public static partial CXString clang_Cursor_getRawCommentText(Cursor cursor);
    [LibraryImport(Library)] public static partial Type clang_getCursorType(Cursor cursor);
    [LibraryImport(Library)] public static partial Type clang_getCursorResultType(Cursor cursor);
    [LibraryImport(Library)] public static partial int clang_Cursor_getNumArguments(Cursor cursor);
    [LibraryImport(Library)] public static partial Cursor clang_Cursor_getArgument(Cursor cursor, uint index);
    [LibraryImport(Library)] public static partial long clang_Cursor_getOffsetOfField(Cursor cursor);
    [LibraryImport(Library)] public static partial Type clang_getCanonicalType(Type type);
    [LibraryImport(Library)] public static partial Type clang_getPointeeType(Type type);
    [LibraryImport(Library)] public static partial uint clang_isConstQualifiedType(Type type);
    [LibraryImport(Library)] public static partial long clang_Type_getSizeOf(Type type);
    [LibraryImport(Library)] public static partial CXString clang_getTypeSpelling(Type type);
    [LibraryImport(Library)] public static partial Cursor clang_getTypeDeclaration(Type type);
    [LibraryImport(Library)] public static partial nint clang_Cursor_Evaluate(Cursor cursor);
    [LibraryImport(Library)] public static partial int clang_EvalResult_getKind(nint result);
    [LibraryImport(Library)] public static partial long clang_EvalResult_getAsLongLong(nint result);
    [LibraryImport(Library)] public static partial double clang_EvalResult_getAsDouble(nint result);
    [LibraryImport(Library)] public static partial byte* clang_EvalResult_getAsStr(nint result);
    [LibraryImport(Library)] public static partial void clang_EvalResult_dispose(nint result);
    [LibraryImport(Library)] public static partial byte* clang_getCString(CXString text);
    [LibraryImport(Library)] public static partial void clang_disposeString(CXString text);

    /// <summary>The text of a CXString, which is then disposed.</summary>
    public static string Take(CXString text)
    {
        try
        {
            return Marshal.PtrToStringUTF8((nint)clang_getCString(text)) ?? "";
        }
        finally
        {
            clang_disposeString(text);
        }
    }

    public static string Spelling(Cursor cursor) => Take(clang_getCursorSpelling(cursor));

    public static string Spelling(Type type) => Take(clang_getTypeSpelling(type));

    public static bool IsFromMainFile(Cursor cursor) => clang_Location_isFromMainFile(clang_getCursorLocation(cursor)) != 0;

    /// <summary>The direct children of a cursor, in source order.</summary>
    public static List<Cursor> Children(Cursor parent)
    {
        var children = new List<Cursor>();
        GCHandle handle = GCHandle.Alloc(children);
        try
        {
            clang_visitChildren(parent, &CollectChild, GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly]
    private static int CollectChild(Cursor cursor, Cursor parent, nint clientData)
    {
        ((List<Cursor>)GCHandle.FromIntPtr(clientData).Target!).Add(cursor);
        return 1; // CXChildVisit_Continue
    }

    /// <summary>The value of a constant expression or of a variable's initializer: a long, a
    /// double or a string; null when clang cannot evaluate it.</summary>
    public static object? Evaluate(Cursor cursor)
    {
        nint result = clang_Cursor_Evaluate(cursor);
        if (result == 0)
        {
            return null;
        }
        try
        {
            return clang_EvalResult_getKind(result) switch
            {
                EvalInt => clang_EvalResult_getAsLongLong(result),
                EvalFloat => clang_EvalResult_getAsDouble(result),
                EvalStrLiteral => Marshal.PtrToStringUTF8((nint)clang_EvalResult_getAsStr(result)),
                _ => null,
            };
        }
        finally
        {
            clang_EvalResult_dispose(result);
        }
    }

    /// <summary>Parses <paramref name="path"/> as C; when <paramref name="contents"/> is given it
    /// is the file's text (an unsaved file). Fails on any error diagnostic. Dispose the index and
    /// the unit with <see cref="clang_disposeTranslationUnit"/> and <see cref="clang_disposeIndex"/>.</summary>
    public static (nint Index, nint Unit) Parse(string path, string? contents, string[] arguments, uint options)
    {
        nint index = clang_createIndex(0, 0);
        var allocated = new List<nint>();
        byte* Utf8(string text)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(text);
            allocated.Add(p);
            return (byte*)p;
        }
        try
        {
            byte** argv = stackalloc byte*[arguments.Length];
            for (int i = 0; i < arguments.Length; i++)
            {
                argv[i] = Utf8(arguments[i]);
            }
            UnsavedFile unsaved = default;
            if (contents != null)
            {
                unsaved = new UnsavedFile
                {
                    Filename = Utf8(path),
                    Contents = Utf8(contents),
                    Length = (nuint)System.Text.Encoding.UTF8.GetByteCount(contents),
                };
            }
            nint unit = clang_parseTranslationUnit(index, Utf8(path), argv, arguments.Length,
                contents != null ? &unsaved : null, contents != null ? 1u : 0u, options);
            if (unit == 0)
            {
                clang_disposeIndex(index);
                throw new InvalidOperationException($"libclang could not parse {path}");
            }
            var errors = new List<string>();
            for (uint i = 0; i < clang_getNumDiagnostics(unit); i++)
            {
                nint diagnostic = clang_getDiagnostic(unit, i);
                if (clang_getDiagnosticSeverity(diagnostic) >= DiagnosticError)
                {
                    errors.Add(Take(clang_formatDiagnostic(diagnostic, 0x1 | 0x2))); // source location, column
                }
                clang_disposeDiagnostic(diagnostic);
            }
            if (errors.Count > 0)
            {
                clang_disposeTranslationUnit(unit);
                clang_disposeIndex(index);
                throw new InvalidOperationException($"libclang reports errors in {path}:\n" + string.Join("\n", errors));
            }
            return (index, unit);
        }
        finally
        {
            foreach (nint p in allocated)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }
}
