using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using NativeSoftmax.Native;
using NativeSoftmax.Operations;
using Kind = NativeSoftmax.Tests.NativeHeader.Kind;

namespace NativeSoftmax.Tests;

/// <summary>
/// The C# side of the ABI against native/include/nativesoftmax.h, the source of truth, read by
/// libclang (<see cref="NativeHeader"/>): the [UnmanagedCallersOnly] exports of
/// NativeSoftmax.Native (names, parameter names, order and types, return types), the Status and
/// Reduction enums, the options struct's layout and defaults, the version and the instruction-set
/// names. C types map to C# exactly: intN_t/uintN_t to the integer of that size and sign, float and
/// double to themselves, T* and const T* to T* (C# has no const pointers), char to byte (UTF-8),
/// and the header's structs to <see cref="CSharpStructs"/>.
/// </summary>
public class AbiConformanceTests
{
    /// <summary>The C# struct that stands for each struct of the header in the exports.</summary>
    private static readonly Dictionary<string, Type> CSharpStructs = new()
    {
        ["nsm_cross_entropy_options"] = typeof(CrossEntropyOptionsV2),
        ["nsm_cross_entropy_stats"] = typeof(CrossEntropyStats),
        ["nsm_bfloat16"] = typeof(BFloat16Storage),
        ["nsm_float16"] = typeof(Float16Storage),
    };

    /// <summary>Fields of nsm_cross_entropy_options that the .NET API takes as an argument of the
    /// CrossEntropy overloads rather than a <see cref="CrossEntropyOptions"/> property (a span
    /// cannot be a property of an options record), by the parameter's name. Their default is NULL:
    /// the overloads without the parameter, or an empty span.</summary>
    private static readonly Dictionary<string, string> OptionsTakenAsArguments = new()
    {
        ["grad_output"] = "gradOutput",
    };

    private static NativeHeader Header => NativeHeader.Instance;

    [Fact]
    public void EveryExportHasItsHeaderSignature()
    {
        var problems = new List<string>();
        var exports = ExportsByEntryPoint();
        Assert.NotEmpty(exports);
        foreach ((string name, MethodInfo method) in exports)
        {
            NativeHeader.Function? function = Header.Functions.SingleOrDefault(f => f.Name == name);
            if (function == null)
            {
                problems.Add($"{Describe(method)} exports {name}, which the header does not declare");
                continue;
            }
            Type result = ClrType(function.Result);
            if (method.ReturnType != result)
            {
                problems.Add($"{name} returns {function.Result.Spelling} ({CSharp(result)}); {Describe(method)} returns {CSharp(method.ReturnType)}");
            }
            ParameterInfo[] parameters = method.GetParameters();
            if (parameters.Length != function.Parameters.Count)
            {
                problems.Add($"{name} has {function.Parameters.Count} parameters ({string.Join(", ", function.Parameters.Select(p => p.Name))}); "
                    + $"{Describe(method)} has {parameters.Length} ({string.Join(", ", parameters.Select(p => p.Name))})");
                continue;
            }
            for (int i = 0; i < parameters.Length; i++)
            {
                NativeHeader.Parameter c = function.Parameters[i];
                Type expected = ClrType(c.Type);
                string where = $"{name} parameter {i + 1} ({c.Name})";
                if (parameters[i].Name != Failure.CamelCase(c.Name))
                {
                    problems.Add($"{where}: {Describe(method)} calls it {parameters[i].Name}, not {Failure.CamelCase(c.Name)}");
                }
                if (parameters[i].ParameterType != expected)
                {
                    problems.Add($"{where}: the header's {c.Type.Spelling} is {CSharp(expected)} in C#; {Describe(method)} has {CSharp(parameters[i].ParameterType)}");
                }
            }
        }
        Assert.True(problems.Count == 0, "Exports.cs differs from " + Header.Path + ":\n" + string.Join("\n", problems));
    }

    [Fact]
    public void VariantsExportEveryHeaderFunctionButTheDispatchersOwn()
    {
        string[] dispatcherOnly = DispatcherOnlyFunctions();
        string[] declared = [.. Header.Functions.Select(f => f.Name)];
        Assert.NotEmpty(dispatcherOnly);
        Assert.Empty(dispatcherOnly.Except(declared));
        string[] exported = [.. ExportsByEntryPoint().Keys];
        Assert.Equal(declared.Except(dispatcherOnly).Order(), exported.Order());
    }

    [Fact]
    public void StatusValuesAreTheHeaders()
    {
        var header = Header.Constants.Where(c => c.Key == "NSM_OK" || c.Key.StartsWith("NSM_ERR_"))
            .Select(c => (c.Key, c.Key == "NSM_OK" ? "OK" : c.Key["NSM_ERR_".Length..], (long)c.Value));
        AssertEnumMatches<Status>([.. header], "NSM_OK, NSM_ERR_*");
    }

    [Fact]
    public void ReductionValuesAreTheHeaders()
    {
        var header = Header.Constants.Where(c => c.Key.StartsWith("NSM_REDUCTION_"))
            .Select(c => (c.Key, c.Key["NSM_REDUCTION_".Length..], (long)c.Value));
        AssertEnumMatches<Reduction>([.. header], "NSM_REDUCTION_*");
    }

    [Fact]
    public void OptionsStructHasTheHeadersLayout()
    {
        foreach ((string cName, Type type) in CSharpStructs)
        {
            NativeHeader.Struct s = Header.Structs[cName];
            Assert.NotEmpty(s.Fields);
            FieldInfo[] fields = [.. type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .OrderBy(f => (long)Marshal.OffsetOf(type, f.Name))];
            Assert.Equal(s.Fields.Select(f => Pascal(f.Name)), fields.Select(f => f.Name));
            foreach ((NativeHeader.Field c, FieldInfo field) in s.Fields.Zip(fields))
            {
                string where = $"{cName}.{c.Name} ({c.Type.Spelling}) as {type.Name}.{field.Name}";
                Assert.True(field.FieldType == ClrType(c.Type), $"{where}: type {CSharp(field.FieldType)}, expected {CSharp(ClrType(c.Type))}");
                Assert.True((long)Marshal.OffsetOf(type, field.Name) == c.Offset, $"{where}: offset {Marshal.OffsetOf(type, field.Name)}, header {c.Offset}");
                Assert.True(Marshal.SizeOf(field.FieldType) == c.Size, $"{where}: size {Marshal.SizeOf(field.FieldType)}, header {c.Size}");
            }
            Assert.True(Marshal.SizeOf(type) == s.Size, $"sizeof({cName}) is {s.Size}; {type.Name} is {Marshal.SizeOf(type)} bytes");
        }
    }

    [Fact]
    public void OptionDefaultsAreTheHeadersInitializer()
    {
        IReadOnlyDictionary<string, object> init = Header.Initializers["nsm_cross_entropy_options"];
        Assert.Equal(Header.Structs["nsm_cross_entropy_options"].Size, (long)init["struct_size"]);
        CrossEntropyOptions defaults = CrossEntropyOptions.Default;
        int compared = 0;
        foreach ((string field, object value) in init.Where(f => f.Key != "struct_size"))
        {
            if (OptionsTakenAsArguments.TryGetValue(field, out string? parameter))
            {
                Assert.True(value == NativeHeader.NullPointer, $"NSM_CROSS_ENTROPY_OPTIONS_INIT sets {field} = {value}, not NULL");
                MethodInfo[] taking = [.. typeof(SoftmaxPrimitives).GetMethods()
                    .Where(m => m.Name == nameof(SoftmaxPrimitives.CrossEntropy)
                        && m.GetParameters().Any(p => p.Name == parameter && p.ParameterType.Name == typeof(ReadOnlySpan<>).Name))];
                Assert.True(taking.Length > 0, $"no CrossEntropy overload takes {field} as a ReadOnlySpan parameter {parameter}");
                continue;
            }
            PropertyInfo property = typeof(CrossEntropyOptions).GetProperty(Pascal(field))
                ?? throw new Xunit.Sdk.XunitException($"CrossEntropyOptions has no property {Pascal(field)} for the header's {field}");
            object actual = property.GetValue(defaults)!;
            object comparable = actual is Enum ? Convert.ToInt64(actual) : actual;
            Assert.True(value.Equals(comparable),
                $"NSM_CROSS_ENTROPY_OPTIONS_INIT sets {field} = {value}; CrossEntropyOptions.Default.{property.Name} is {actual}");
            compared++;
        }
        Assert.Equal(typeof(CrossEntropyOptions).GetProperties(BindingFlags.Instance | BindingFlags.Public).Length, compared);
    }

    [Fact]
    public void VersionIsTheHeaders()
    {
        long major = (long)Header.Constants["NSM_VERSION_MAJOR"];
        long minor = (long)Header.Constants["NSM_VERSION_MINOR"];
        long patch = (long)Header.Constants["NSM_VERSION_PATCH"];
        // The header's own derived values agree with MAJOR / MINOR / PATCH, the one source.
        Assert.Equal(major * 10000 + minor * 100 + patch, (long)Header.Constants["NSM_VERSION_NUMBER"]);
        Assert.Equal($"{major}.{minor}.{patch}", (string)Header.Constants["NSM_VERSION_STRING"]);
        // What the exports report (generated from the header by NativeSoftmax.Native.csproj).
        int exported = HeaderVersion.Number;
        Assert.Equal((long)Header.Constants["NSM_VERSION_NUMBER"], exported);
        Assert.Equal(Header.Constants["NSM_VERSION_STRING"] + "\0", Encoding.UTF8.GetString(HeaderVersion.Utf8));
        // The variant marker the dispatcher looks for: one export, named for the header's version.
        string[] markers = [.. typeof(Exports).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<UnmanagedCallersOnlyAttribute>()?.EntryPoint)
            .OfType<string>()
            .Where(name => name.StartsWith("nsm_variant_v"))];
        Assert.Equal([$"nsm_variant_v{Header.Constants["NSM_VERSION_NUMBER"]}"], markers);
        // The assemblies' version (Directory.Build.props reads the header).
        var version = new Version((int)major, (int)minor, (int)patch, 0);
        Assert.Equal(version, typeof(SoftmaxPrimitives).Assembly.GetName().Version);
        Assert.Equal(version, typeof(Exports).Assembly.GetName().Version);
    }

    [Fact]
    public void InstructionSetIsOneOfTheHeadersNames()
    {
        // nsm_isa's documentation lists the paths, then "none" (no build can run here).
        IReadOnlyList<string> names = NativeHeader.QuotedWords(Header["nsm_isa"].Comment);
        Assert.Equal("none", names[^1]);
        string? isa = Dispatch.Isa;
        if (isa != null)
        {
            Assert.Contains(isa, names.Take(names.Count - 1));
        }
        Assert.Equal(isa ?? "scalar", SoftmaxPrimitives.InstructionSet);
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static Dictionary<string, MethodInfo> ExportsByEntryPoint() =>
        typeof(Exports).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (EntryPoint: m.GetCustomAttribute<UnmanagedCallersOnlyAttribute>()?.EntryPoint, Method: m))
            .Where(e => e.EntryPoint?.StartsWith("nsm_") == true && e.EntryPoint != HeaderVersion.VariantMarker)
            .ToDictionary(e => e.EntryPoint!, e => e.Method);

    /// <summary>native/tests/dispatcher_only_functions.txt: one name per line, '#' comments.</summary>
    private static string[] DispatcherOnlyFunctions() =>
        [.. File.ReadLines(NativeHeader.RepositoryFile("native", "tests", "dispatcher_only_functions.txt"))
            .Select(line => line.Split('#')[0].Trim())
            .Where(line => line.Length > 0)];

    /// <summary>The C# type that a C type of the header is, exactly.</summary>
    private static Type ClrType(NativeHeader.CType c) => c.Kind switch
    {
        Kind.Void => typeof(void),
        Kind.Char => typeof(byte),
        Kind.Integer => (c.Bits, c.Signed) switch
        {
            (8, true) => typeof(sbyte),
            (8, false) => typeof(byte),
            (16, true) => typeof(short),
            (16, false) => typeof(ushort),
            (32, true) => typeof(int),
            (32, false) => typeof(uint),
            (64, true) => typeof(long),
            (64, false) => typeof(ulong),
            _ => throw new NotSupportedException($"C type {c.Spelling}"),
        },
        Kind.Floating when c.Bits == 32 => typeof(float),
        Kind.Floating when c.Bits == 64 => typeof(double),
        Kind.Pointer => ClrType(c.Pointee!).MakePointerType(),
        Kind.Record when CSharpStructs.TryGetValue(c.Record!, out Type? type) => type,
        _ => throw new NotSupportedException($"C type {c.Spelling} has no C# counterpart in AbiConformanceTests"),
    };

    private static string CSharp(Type type) =>
        type.IsPointer ? CSharp(type.GetElementType()!) + "*"
        : type == typeof(void) ? "void"
        : Type.GetTypeCode(type) switch
        {
            TypeCode.SByte => "sbyte",
            TypeCode.Byte => "byte",
            TypeCode.Int16 => "short",
            TypeCode.UInt16 => "ushort",
            TypeCode.Int32 => "int",
            TypeCode.UInt32 => "uint",
            TypeCode.Int64 => "long",
            TypeCode.UInt64 => "ulong",
            TypeCode.Single => "float",
            TypeCode.Double => "double",
            _ => type.Name,
        };

    private static string Describe(MethodInfo method) => $"{method.DeclaringType!.Name}.{method.Name}";

    /// <summary>"ignore_index" → "IgnoreIndex".</summary>
    private static string Pascal(string snake) =>
        string.Concat(snake.Split('_').Select(w => w.Length == 0 ? w : char.ToUpperInvariant(w[0]) + w[1..]));

    /// <summary>
    /// Every C constant has an enum member of the same value whose name says the same words as the
    /// constant's name without its family prefix (NSM_ERR_INVALID_LEADING_DIM → INVALID_LEADING_DIM),
    /// and the enum has no other member. Word for word, a C# word may spell out an abbreviated C
    /// word (DIM → Dimension).
    /// </summary>
    private static void AssertEnumMatches<TEnum>((string CName, string Words, long Value)[] header, string family)
        where TEnum : struct, Enum
    {
        Assert.NotEmpty(header);
        var members = Enum.GetValues<TEnum>().ToDictionary(v => v.ToString(), v => Convert.ToInt64(v));
        var problems = new List<string>();
        foreach ((string cName, string cWordsJoined, long value) in header)
        {
            string[] cWords = cWordsJoined.Split('_');
            string? match = members.Keys.SingleOrDefault(m =>
            {
                string[] words = System.Text.RegularExpressions.Regex.Split(m, "(?<=[a-z0-9])(?=[A-Z])");
                return words.Length == cWords.Length
                    && words.Zip(cWords).All(w => w.First.StartsWith(w.Second, StringComparison.OrdinalIgnoreCase));
            });
            if (match == null)
            {
                problems.Add($"{typeof(TEnum).Name} has no member for the header's {cName} = {value}");
                continue;
            }
            if (members[match] != value)
            {
                problems.Add($"{typeof(TEnum).Name}.{match} = {members[match]}; the header's {cName} = {value}");
            }
            members.Remove(match);
        }
        problems.AddRange(members.Select(m => $"{typeof(TEnum).Name}.{m.Key} = {m.Value} is not in the header ({family})"));
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
