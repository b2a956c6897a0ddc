using static NativeSoftmax.Tests.LibClang;

namespace NativeSoftmax.Tests;

/// <summary>
/// native/include/nativesoftmax.h as libclang reads it (as C99): its functions with their
/// parameter names and types, its structs' layouts, the values of its constants (NSM_OK,
/// NSM_ERR_*, NSM_REDUCTION_*, NSM_VERSION_*) and of its *_INIT initializers, and the doc comment
/// of each function. The .NET side's only reader of the header.
/// </summary>
internal sealed class NativeHeader
{
    /// <summary>The constants read: object-like macros with these prefixes (or exactly NSM_OK).</summary>
    public static readonly string[] ConstantPrefixes = ["NSM_ERR_", "NSM_REDUCTION_", "NSM_VERSION_"];

    public enum Kind { Void, Char, Integer, Floating, Pointer, Record }

    /// <summary>A C type, canonical (typedefs resolved); <see cref="Spelling"/> is as written.</summary>
    public sealed record CType(Kind Kind, int Bits, bool Signed, bool Const, CType? Pointee, string? Record, string Spelling)
    {
        public override string ToString() => Spelling;
    }

    public sealed record Parameter(string Name, CType Type);

    public sealed record Function(string Name, CType Result, IReadOnlyList<Parameter> Parameters, string Comment);

    /// <summary>A struct field; offset and size in bytes.</summary>
    public sealed record Field(string Name, CType Type, long Offset, long Size);

    public sealed record Struct(string Name, long Size, IReadOnlyList<Field> Fields);

    public required string Path { get; init; }

    /// <summary>The NSM_API functions, in declaration order.</summary>
    public required IReadOnlyList<Function> Functions { get; init; }

    /// <summary>The structs, by tag name.</summary>
    public required IReadOnlyDictionary<string, Struct> Structs { get; init; }

    /// <summary>Values of the constants (a long, or a string for NSM_VERSION_STRING), by macro name.</summary>
    public required IReadOnlyDictionary<string, object> Constants { get; init; }

    /// <summary>Each NSM_X_INIT macro's values (long or double, or <see cref="NullPointer"/> for a
    /// pointer field set to NULL) by field name, by struct name.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, object>> Initializers { get; init; }

    public Function this[string name] => Functions.Single(f => f.Name == name);

    /// <summary>The value of a pointer field that an initializer sets to NULL.</summary>
    public static readonly object NullPointer = "NULL";

    private static readonly Lazy<NativeHeader> Repository = new(() => Read(RepositoryFile("native", "include", "nativesoftmax.h")));

    /// <summary>The repository's header, read once.</summary>
    public static NativeHeader Instance => Repository.Value;

    /// <summary>A file of the repository, found above the test binaries.</summary>
    public static string RepositoryFile(params string[] parts)
    {
        string relative = System.IO.Path.Combine(parts);
        for (string? directory = AppContext.BaseDirectory; directory != null; directory = System.IO.Path.GetDirectoryName(directory))
        {
            string candidate = System.IO.Path.Combine(directory, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    public static NativeHeader Read(string path)
    {
        string[] arguments = ["-x", "c", "-std=c99", "-I", System.IO.Path.GetDirectoryName(path)!];
        nint index, unit;
        try
        {
            (index, unit) = Parse(path, null, arguments, DetailedPreprocessingRecord);
        }
        catch (DllNotFoundException exception)
        {
            throw new InvalidOperationException(
                "libclang-14.so.1 is missing: install Debian's libclang1-14 (build.sh does)", exception);
        }

        var functions = new List<Function>();
        var structs = new Dictionary<string, Struct>();
        var constantNames = new List<string>();
        var initializerNames = new List<string>();
        try
        {
            foreach (Cursor cursor in Children(clang_getTranslationUnitCursor(unit)))
            {
                if (!IsFromMainFile(cursor))
                {
                    continue;
                }
                string name = Spelling(cursor);
                switch (cursor.Kind)
                {
                    case CursorKind.FunctionDecl:
                        functions.Add(ReadFunction(cursor, name));
                        break;
                    case CursorKind.StructDecl when name.Length > 0:
                        structs[name] = ReadStruct(cursor, name);
                        break;
                    case CursorKind.MacroDefinition when clang_Cursor_isMacroFunctionLike(cursor) == 0:
                        if (name == "NSM_OK" || ConstantPrefixes.Any(name.StartsWith))
                        {
                            constantNames.Add(name);
                        }
                        else if (name.StartsWith("NSM_") && name.EndsWith("_INIT"))
                        {
                            initializerNames.Add(name);
                        }
                        break;
                }
            }
        }
        finally
        {
            clang_disposeTranslationUnit(unit);
            clang_disposeIndex(index);
        }

        (var constants, var initializers) = EvaluateMacros(path, arguments, constantNames, initializerNames, structs);
        return new NativeHeader
        {
            Path = path,
            Functions = functions,
            Structs = structs,
            Constants = constants,
            Initializers = initializers,
        };
    }

    private static Function ReadFunction(Cursor cursor, string name)
    {
        var parameters = new List<Parameter>();
        int count = clang_Cursor_getNumArguments(cursor);
        for (uint i = 0; i < count; i++)
        {
            Cursor argument = clang_Cursor_getArgument(cursor, i);
            parameters.Add(new Parameter(Spelling(argument), TypeOf(clang_getCursorType(argument))));
        }
        return new Function(name, TypeOf(clang_getCursorResultType(cursor)), parameters,
            Take(clang_Cursor_getRawCommentText(cursor)));
    }

    private static Struct ReadStruct(Cursor cursor, string name)
    {
        var fields = new List<Field>();
        foreach (Cursor child in Children(cursor))
        {
            if (child.Kind == CursorKind.FieldDecl)
            {
                LibClang.Type type = clang_getCursorType(child);
                fields.Add(new Field(Spelling(child), TypeOf(type), clang_Cursor_getOffsetOfField(child) / 8, clang_Type_getSizeOf(type)));
            }
        }
        return new Struct(name, clang_Type_getSizeOf(clang_getCursorType(cursor)), fields);
    }

    private static CType TypeOf(LibClang.Type written)
    {
        LibClang.Type type = clang_getCanonicalType(written);
        string spelling = Spelling(written);
        bool isConst = clang_isConstQualifiedType(type) != 0;
        int bits = (int)Math.Max(0, clang_Type_getSizeOf(type) * 8);
        return type.Kind switch
        {
            TypeKind.Void => new CType(Kind.Void, 0, false, isConst, null, null, spelling),
            TypeKind.CharS or TypeKind.CharU => new CType(Kind.Char, bits, type.Kind == TypeKind.CharS, isConst, null, null, spelling),
            TypeKind.SChar or TypeKind.Short or TypeKind.Int or TypeKind.Long or TypeKind.LongLong
                => new CType(Kind.Integer, bits, true, isConst, null, null, spelling),
            TypeKind.UChar or TypeKind.UShort or TypeKind.UInt or TypeKind.ULong or TypeKind.ULongLong
                => new CType(Kind.Integer, bits, false, isConst, null, null, spelling),
            TypeKind.Float or TypeKind.Double => new CType(Kind.Floating, bits, true, isConst, null, null, spelling),
            TypeKind.Pointer => new CType(Kind.Pointer, bits, false, isConst, TypeOf(clang_getPointeeType(type)), null, spelling),
            TypeKind.Record => new CType(Kind.Record, bits, false, isConst, null, Spelling(clang_getTypeDeclaration(type)), spelling),
            _ => throw new NotSupportedException($"C type '{spelling}' (CXTypeKind {(int)type.Kind}) is not mapped by NativeHeader"),
        };
    }

    /// <summary>Evaluates the macros in a probe file that includes the header: one variable per
    /// constant, and one variable of the struct per NSM_X_INIT (the struct nsm_x).</summary>
    private static (Dictionary<string, object>, Dictionary<string, IReadOnlyDictionary<string, object>>) EvaluateMacros(
        string headerPath, string[] arguments, List<string> constantNames, List<string> initializerNames,
        Dictionary<string, Struct> structs)
    {
        var probe = new System.Text.StringBuilder($"#include \"{System.IO.Path.GetFileName(headerPath)}\"\n");
        foreach (string name in constantNames)
        {
            probe.Append($"static const __auto_type probe_{name} = {name};\n");
        }
        var initializerStructs = new Dictionary<string, Struct>();
        foreach (string name in initializerNames)
        {
            string structName = name[..^"_INIT".Length].ToLowerInvariant();
            if (!structs.TryGetValue(structName, out Struct? s))
            {
                throw new InvalidOperationException($"{name}: the header declares no struct {structName}");
            }
            initializerStructs[name] = s;
            probe.Append($"static const {structName} probe_{name} = {name};\n");
        }

        string probePath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(headerPath)!, "nsm_abi_probe.c");
        (nint index, nint unit) = Parse(probePath, probe.ToString(), [.. arguments.Select(a => a == "-std=c99" ? "-std=gnu99" : a)], 0);
        var constants = new Dictionary<string, object>();
        var initializers = new Dictionary<string, IReadOnlyDictionary<string, object>>();
        try
        {
            foreach (Cursor cursor in Children(clang_getTranslationUnitCursor(unit)))
            {
                string variable = Spelling(cursor);
                if (cursor.Kind != CursorKind.VarDecl || !IsFromMainFile(cursor) || !variable.StartsWith("probe_"))
                {
                    continue;
                }
                string name = variable["probe_".Length..];
                if (initializerStructs.TryGetValue(name, out Struct? s))
                {
                    Cursor list = Children(cursor).Single(c => c.Kind == CursorKind.InitListExpr);
                    List<Cursor> values = Children(list);
                    if (values.Count != s.Fields.Count)
                    {
                        throw new InvalidOperationException($"{name} gives {values.Count} values for the {s.Fields.Count} fields of {s.Name}");
                    }
                    initializers[s.Name] = s.Fields.Zip(values).ToDictionary(
                        p => p.First.Name,
                        p => (p.First.Type.Kind == Kind.Pointer ? NullPointerOrNull(p.Second) : Evaluate(p.Second))
                            ?? throw new InvalidOperationException($"{name}: clang cannot evaluate the value of {p.First.Name}"));
                }
                else
                {
                    constants[name] = Evaluate(cursor) ?? throw new InvalidOperationException($"clang cannot evaluate {name}");
                }
            }
        }
        finally
        {
            clang_disposeTranslationUnit(unit);
            clang_disposeIndex(index);
        }
        return (constants, initializers);
    }

    /// <summary>
    /// <see cref="NullPointer"/> when a pointer initializer is a null pointer constant (NULL,
    /// ((void*)0) or 0: libclang evaluates no pointer, so the integer under its casts and
    /// parentheses is evaluated), else null.
    /// </summary>
    private static object? NullPointerOrNull(Cursor value)
    {
        for (Cursor expression = value; ; )
        {
            if (Evaluate(expression) is long integer)
            {
                return integer == 0 ? NullPointer : null;
            }
            List<Cursor> children = Children(expression);
            if (children.Count != 1)
            {
                return null;
            }
            expression = children[0];
        }
    }

    /// <summary>The double-quoted words of a doc comment, in order.</summary>
    public static IReadOnlyList<string> QuotedWords(string comment) =>
        [.. System.Text.RegularExpressions.Regex.Matches(comment, "\"([^\"]*)\"").Select(m => m.Groups[1].Value)];
}
