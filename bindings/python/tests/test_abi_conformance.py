"""The Python binding and the dispatcher against native/include/nativesoftmax.h, the source of truth
of the ABI, read by libclang (Debian's python3-clang-14, which build.sh installs):

- the ctypes prototypes (the typed ones, and the ones the operations call, with data pointers as
  c_void_p addresses), the options structure (and the bytes the operations pack for it), the
  constants (NSM_OK, NSM_ERR_*, NSM_REDUCTION_*), the version and the option defaults of the
  binding (nativesoftmax/_native.py, cross_entropy);
- the dispatcher (native/src/dispatch.c): it defines every header function with the header's
  parameters, each forwarder (the NSM_FORWARDED_OPERATIONS X-macro) passes its parameters to the
  variant in order, and it asks a variant only for functions that variants export
  (native/tests/dispatcher_only_functions.txt lists those they do not).

C types map to ctypes exactly: intN_t / uintN_t to c_intN / c_uintN, float and double to c_float and
c_double, T* and const T* to POINTER(T) (ctypes has no const), char* returns to c_char_p, and the
header's structs to STRUCTS. The .NET side is checked by AbiConformanceTests.cs.
"""

import ctypes
import inspect
import re
from collections import namedtuple
from pathlib import Path

import pytest

try:
    from clang import cindex
except ImportError as exc:  # fail, not skip: CI must run this check
    raise ImportError("test_abi_conformance needs libclang's Python bindings: Debian's "
                      "python3-clang-14 (build.sh installs it)") from exc

import nativesoftmax as nsm
from nativesoftmax import _native, _ops

ROOT = Path(__file__).resolve().parents[3]
HEADER = ROOT / "native" / "include" / "nativesoftmax.h"
DISPATCHER = ROOT / "native" / "src" / "dispatch.c"
DISPATCHER_ONLY = ROOT / "native" / "tests" / "dispatcher_only_functions.txt"

# The C structs of the header and the ctypes structures that stand for them.
STRUCTS = {"nsm_cross_entropy_options": _native.CrossEntropyOptions,
           "nsm_cross_entropy_stats": _native.CrossEntropyStats,
           "nsm_bfloat16": _native.BFloat16, "nsm_float16": _native.Float16}

# The constants compared: object-like macros named NSM_OK or starting with one of these.
CONSTANT_PREFIXES = ("NSM_ERR_", "NSM_REDUCTION_", "NSM_VERSION_")

# ---------------------------------------------------------------------------------------------
# Reading C through libclang
# ---------------------------------------------------------------------------------------------

CType = namedtuple("CType", "kind bits signed pointee record spelling")
Function = namedtuple("Function", "name result parameters comment")  # parameters: [(name, CType)]
Field = namedtuple("Field", "name type offset size")  # offset and size in bytes
Struct = namedtuple("Struct", "name size fields")
Header = namedtuple("Header", "functions structs constants initializers")

_K = cindex.TypeKind
_SIGNED = {_K.SCHAR, _K.SHORT, _K.INT, _K.LONG, _K.LONGLONG}
_UNSIGNED = {_K.UCHAR, _K.USHORT, _K.UINT, _K.ULONG, _K.ULONGLONG}


def _ctype(written):
    t = written.get_canonical()
    bits = max(t.get_size(), 0) * 8
    if t.kind == _K.VOID:
        return CType("void", 0, False, None, None, written.spelling)
    if t.kind in (_K.CHAR_S, _K.CHAR_U):
        return CType("char", bits, t.kind == _K.CHAR_S, None, None, written.spelling)
    if t.kind in _SIGNED or t.kind in _UNSIGNED:
        return CType("integer", bits, t.kind in _SIGNED, None, None, written.spelling)
    if t.kind in (_K.FLOAT, _K.DOUBLE):
        return CType("floating", bits, True, None, None, written.spelling)
    if t.kind == _K.POINTER:
        return CType("pointer", bits, False, _ctype(t.get_pointee()), None, written.spelling)
    if t.kind == _K.RECORD:
        return CType("record", bits, False, None, t.get_declaration().spelling, written.spelling)
    raise NotImplementedError("C type %r (%s) is not mapped" % (written.spelling, t.kind))


def _function(cursor):
    params = [(a.spelling, _ctype(a.type)) for a in cursor.get_arguments()]
    return Function(cursor.spelling, _ctype(cursor.result_type), params, cursor.raw_comment or "")


def _parse(path, args, contents=None, detailed=False):
    options = cindex.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD if detailed else 0
    unsaved = [(str(path), contents)] if contents is not None else None
    unit = cindex.Index.create().parse(str(path), args=args, unsaved_files=unsaved, options=options)
    errors = [str(d) for d in unit.diagnostics if d.severity >= cindex.Diagnostic.Error]
    assert not errors, "libclang cannot parse %s:\n%s" % (path, "\n".join(errors))
    return unit


def _in_main_file(cursor, path):
    return cursor.location.file is not None and Path(cursor.location.file.name) == Path(path)


_lib = cindex.conf.lib
for _name, _restype, _argtypes in (
        ("clang_Cursor_Evaluate", ctypes.c_void_p, [cindex.Cursor]),
        ("clang_EvalResult_getKind", ctypes.c_int, [ctypes.c_void_p]),
        ("clang_EvalResult_getAsLongLong", ctypes.c_longlong, [ctypes.c_void_p]),
        ("clang_EvalResult_getAsDouble", ctypes.c_double, [ctypes.c_void_p]),
        ("clang_EvalResult_getAsStr", ctypes.c_char_p, [ctypes.c_void_p]),
        ("clang_EvalResult_dispose", None, [ctypes.c_void_p])):
    getattr(_lib, _name).restype = _restype
    getattr(_lib, _name).argtypes = _argtypes


def _evaluate(cursor):
    """The value of a constant expression or of a variable's initializer (int, float or str)."""
    result = _lib.clang_Cursor_Evaluate(cursor)
    assert result, "libclang cannot evaluate %s" % cursor.spelling
    try:
        kind = _lib.clang_EvalResult_getKind(result)
        if kind == 1:
            return _lib.clang_EvalResult_getAsLongLong(result)
        if kind == 2:
            return _lib.clang_EvalResult_getAsDouble(result)
        if kind == 4:
            return _lib.clang_EvalResult_getAsStr(result).decode()
        raise AssertionError("%s evaluates to a value of kind %d" % (cursor.spelling, kind))
    finally:
        _lib.clang_EvalResult_dispose(result)


def _null_pointer(cursor):
    """None for a null pointer constant (NULL, ((void*)0), 0): libclang evaluates no pointer, so
    the integer under the casts and parentheses is evaluated."""
    while True:
        result = _lib.clang_Cursor_Evaluate(cursor)
        if result:
            try:
                if _lib.clang_EvalResult_getKind(result) == 1:
                    value = _lib.clang_EvalResult_getAsLongLong(result)
                    assert value == 0, "%s: a pointer initialised to %d" % (cursor.spelling, value)
                    return None
            finally:
                _lib.clang_EvalResult_dispose(result)
        children = list(cursor.get_children())
        assert len(children) == 1, "libclang cannot evaluate the pointer %s" % cursor.spelling
        cursor = children[0]


def read_header(path=HEADER):
    """The header's NSM_API functions, structs, constants and NSM_X_INIT initializers."""
    args = ["-x", "c", "-std=c99", "-I", str(path.parent)]
    unit = _parse(path, args, detailed=True)
    functions, structs, constants, initializers = {}, {}, [], []
    for cursor in unit.cursor.get_children():
        if not _in_main_file(cursor, path):
            continue
        if cursor.kind == cindex.CursorKind.FUNCTION_DECL:
            functions[cursor.spelling] = _function(cursor)
        elif cursor.kind == cindex.CursorKind.STRUCT_DECL and cursor.spelling:
            fields = [Field(f.spelling, _ctype(f.type), f.get_field_offsetof() // 8,
                            f.type.get_size())
                      for f in cursor.get_children() if f.kind == cindex.CursorKind.FIELD_DECL]
            structs[cursor.spelling] = Struct(cursor.spelling, cursor.type.get_size(), fields)
        elif cursor.kind == cindex.CursorKind.MACRO_DEFINITION:
            name = cursor.spelling
            if name == "NSM_OK" or name.startswith(CONSTANT_PREFIXES):
                constants.append(name)
            elif name.startswith("NSM_") and name.endswith("_INIT"):
                initializers.append(name)

    # Evaluate the macros in a probe that includes the header: one variable per constant, and one
    # variable of struct nsm_x per NSM_X_INIT.
    probe = ['#include "%s"' % path.name]
    probe += ["static const __auto_type probe_%s = %s;" % (n, n) for n in constants]
    probe += ["static const %s probe_%s = %s;" % (n[:-len("_INIT")].lower(), n, n)
              for n in initializers]
    probe_path = path.parent / "nsm_abi_probe.c"
    unit = _parse(probe_path, ["-x", "c", "-std=gnu99", "-I", str(path.parent)],
                  "\n".join(probe) + "\n")
    values, inits = {}, {}
    for cursor in unit.cursor.get_children():
        if cursor.kind != cindex.CursorKind.VAR_DECL or not _in_main_file(cursor, probe_path):
            continue
        name = cursor.spelling[len("probe_"):]
        if name in initializers:
            struct = structs[name[:-len("_INIT")].lower()]
            (init_list,) = [c for c in cursor.get_children()
                            if c.kind == cindex.CursorKind.INIT_LIST_EXPR]
            items = list(init_list.get_children())
            assert len(items) == len(struct.fields), "%s: %d values for %d fields" % (
                name, len(items), len(struct.fields))
            inits[struct.name] = {f.name: _null_pointer(v) if f.type.kind == "pointer" else _evaluate(v)
                                  for f, v in zip(struct.fields, items)}
        else:
            values[name] = _evaluate(cursor)
    return Header(functions, structs, values, inits)


@pytest.fixture(scope="module")
def header():
    h = read_header()
    assert h.functions and h.structs and h.constants and h.initializers, h
    return h


def dispatcher_only():
    """native/tests/dispatcher_only_functions.txt: one name per line, '#' starts a comment."""
    names = (line.split("#")[0].strip() for line in DISPATCHER_ONLY.read_text().splitlines())
    return {n for n in names if n}


def isa_names(h):
    """The instruction-set paths nsm_isa() documents (its comment's quoted words but "none")."""
    words = re.findall(r'"([^"]*)"', h.functions["nsm_isa"].comment)
    assert words[-1] == "none", words
    return words[:-1]


# ---------------------------------------------------------------------------------------------
# C types as ctypes
# ---------------------------------------------------------------------------------------------

_INTEGERS = {(8, True): ctypes.c_int8, (8, False): ctypes.c_uint8,
             (16, True): ctypes.c_int16, (16, False): ctypes.c_uint16,
             (32, True): ctypes.c_int32, (32, False): ctypes.c_uint32,
             (64, True): ctypes.c_int64, (64, False): ctypes.c_uint64}
_NAMES = {t: "c_%sint%d" % ("" if signed else "u", bits) for (bits, signed), t in _INTEGERS.items()}


def ctypes_of(c):
    """The ctypes type that the C type ``c`` is, exactly."""
    if c.kind == "void":
        return None
    if c.kind == "pointer" and c.pointee.kind == "char":
        return ctypes.c_char_p
    if c.kind == "integer":
        return _INTEGERS[(c.bits, c.signed)]
    if c.kind == "floating":
        return {32: ctypes.c_float, 64: ctypes.c_double}[c.bits]
    if c.kind == "pointer":
        return ctypes.POINTER(ctypes_of(c.pointee))
    if c.kind == "record" and c.record in STRUCTS:
        return STRUCTS[c.record]
    raise NotImplementedError("C type %s has no ctypes counterpart here" % c.spelling)


def describe(t):
    if t is None:
        return "None"
    if t in _NAMES:
        return _NAMES[t]
    if hasattr(t, "_type_") and isinstance(t._type_, type):
        return "POINTER(%s)" % describe(t._type_)
    return t.__name__


# ---------------------------------------------------------------------------------------------
# The binding
# ---------------------------------------------------------------------------------------------

def test_prototypes_are_the_headers(header):
    problems = []
    prototypes = {name: (restype, argtypes) for name, restype, argtypes in _native._prototypes()}
    assert sorted(prototypes) == sorted(header.functions), "_prototypes() declares other functions"
    for name, (restype, argtypes) in prototypes.items():
        f = header.functions[name]
        if restype is not ctypes_of(f.result):
            problems.append("%s returns %s (%s); the binding says %s" % (
                name, f.result.spelling, describe(ctypes_of(f.result)), describe(restype)))
        if len(argtypes) != len(f.parameters):
            problems.append("%s has %d parameters (%s); the binding declares %d" % (
                name, len(f.parameters), ", ".join(p for p, _ in f.parameters), len(argtypes)))
            continue
        for i, ((pname, ptype), argtype) in enumerate(zip(f.parameters, argtypes)):
            if argtype is not ctypes_of(ptype):
                problems.append("%s parameter %d (%s): the header's %s is %s; the binding says %s"
                                % (name, i + 1, pname, ptype.spelling, describe(ctypes_of(ptype)),
                                   describe(argtype)))
    assert not problems, "_native._prototypes() differs from %s:\n%s" % (
        HEADER, "\n".join(problems))


def test_address_prototypes_are_the_headers_with_pointers_as_addresses(header):
    """The operations call a second binding of every function (_native.functions()) whose data
    pointers are c_void_p. It is the typed one above with exactly that change: same names, same
    return types, and at every position the header's own type unless that is a data pointer
    (char* stays c_char_p)."""
    problems = []
    bound = _native.functions()
    assert sorted(bound) == sorted(header.functions)
    for name, fn in bound.items():
        f = header.functions[name]
        if fn.restype is not ctypes_of(f.result):
            problems.append("%s returns %s; the address binding says %s" % (
                name, describe(ctypes_of(f.result)), describe(fn.restype)))
        want = [ctypes.c_void_p if p.kind == "pointer" and p.pointee.kind != "char"
                else ctypes_of(p) for _, p in f.parameters]
        if list(fn.argtypes) != want:
            problems.append("%s: the address binding declares (%s); the header's parameters "
                            "with data pointers as addresses are (%s)" % (
                                name, ", ".join(describe(t) for t in fn.argtypes),
                                ", ".join(describe(t) for t in want)))
    assert not problems, "\n".join(problems)


def test_word_prototypes_are_the_headers_int64_and_pointer_functions(header):
    """The fast paths call a third binding (_native.word_functions()) where int64_t and pointers
    are passed alike: exactly the header's functions whose every parameter is an int64_t or a data
    pointer, with the header's return type and every parameter declared c_void_p."""
    words = _native.word_functions()
    if not _native.WORDS_ALIKE:
        assert words == {}
        return
    want = sorted(name for name, f in header.functions.items() if f.parameters and all(
        (p.kind == "pointer" and p.pointee.kind != "char") or ctypes_of(p) is ctypes.c_int64
        for _, p in f.parameters))
    assert sorted(words) == want
    assert "nsm_softmax_f32" in want and "nsm_cross_entropy_soft_f64" in want
    for name, fn in words.items():
        f = header.functions[name]
        assert fn.restype is ctypes_of(f.result), name
        assert list(fn.argtypes) == [ctypes.c_void_p] * len(f.parameters), name


def test_options_bytes_are_the_structure(header):
    """The operations pass the options as bytes packed with _native.OPTIONS_FORMAT; they must be
    the bytes of the header-checked CrossEntropyOptions, field for field."""
    for values in ((2, -100, 0.0, 1.0, 0), (0, 2 ** 63 - 1, 0.25, -3.5, 2 ** 64 - 8),
                   (1, -2 ** 63, 1.0, 1e300, 0x7F00_1234_5678)):
        size = _native.OPTIONS_SIZE
        assert size == header.structs["nsm_cross_entropy_options"].size
        packed = _native.OPTIONS_FORMAT.pack(size, *values)
        assert packed == bytes(_native.CrossEntropyOptions(size, *values)), values


@pytest.mark.parametrize("c_name", sorted(STRUCTS))
def test_structure_layout_is_the_headers(header, c_name):
    s, py = header.structs[c_name], STRUCTS[c_name]
    assert [name for name, _ in py._fields_] == [f.name for f in s.fields]
    for f, (name, py_type) in zip(s.fields, py._fields_):
        where = "%s.%s (%s)" % (c_name, f.name, f.type.spelling)
        assert py_type is ctypes_of(f.type), "%s is %s; the binding says %s" % (
            where, describe(ctypes_of(f.type)), describe(py_type))
        assert getattr(py, name).offset == f.offset, "%s: offset %d, header %d" % (
            where, getattr(py, name).offset, f.offset)
        assert getattr(py, name).size == f.size, where
    assert ctypes.sizeof(py) == s.size, "sizeof(%s) is %d; %s is %d bytes" % (
        c_name, s.size, py.__name__, ctypes.sizeof(py))


def test_constants_are_the_headers(header):
    ours = {n: v for n, v in vars(_native).items()
            if n == "NSM_OK" or n.startswith(("NSM_ERR_", "NSM_REDUCTION_"))}
    theirs = {n: v for n, v in header.constants.items() if not n.startswith("NSM_VERSION_")}
    assert ours == theirs
    assert _native.STATUS_NAMES == {v: n for n, v in theirs.items()
                                    if n == "NSM_OK" or n.startswith("NSM_ERR_")}
    # cross_entropy's reduction names: "none" is NSM_REDUCTION_NONE, and so on.
    assert _ops._REDUCTIONS == {n[len("NSM_REDUCTION_"):].lower(): v for n, v in theirs.items()
                                if n.startswith("NSM_REDUCTION_")}


def test_option_defaults_are_the_headers_initializer(header):
    init = header.initializers["nsm_cross_entropy_options"]
    assert init["struct_size"] == header.structs["nsm_cross_entropy_options"].size
    defaults = {n: p.default for n, p in inspect.signature(nsm.cross_entropy).parameters.items()}
    options = [n for n in init if n != "struct_size"]
    assert options
    for name in options:
        assert name in defaults, "cross_entropy has no parameter %s" % name
        ours = _ops._REDUCTIONS[defaults[name]] if name == "reduction" else defaults[name]
        assert ours == init[name] and type(ours) is type(init[name]), (
            "NSM_CROSS_ENTROPY_OPTIONS_INIT sets %s = %r; cross_entropy's default is %r" % (
                name, init[name], defaults[name]))


def test_version_is_the_headers(header):
    v = header.constants
    major, minor, patch = v["NSM_VERSION_MAJOR"], v["NSM_VERSION_MINOR"], v["NSM_VERSION_PATCH"]
    # the header's own derived values agree with MAJOR / MINOR / PATCH, the one source
    assert v["NSM_VERSION_NUMBER"] == major * 10000 + minor * 100 + patch
    assert v["NSM_VERSION_STRING"] == "%d.%d.%d" % (major, minor, patch)
    assert _native.HEADER_VERSION_NUMBER == v["NSM_VERSION_NUMBER"]
    assert _native.HEADER_VERSION_STRING == nsm.__version__ == v["NSM_VERSION_STRING"]
    # and the library that was loaded
    assert _native.lib().nsm_version_number() == v["NSM_VERSION_NUMBER"]
    assert nsm.library_version() == v["NSM_VERSION_STRING"]


def test_isa_is_one_of_the_headers_names(header):
    assert nsm.isa() in isa_names(header)


# ---------------------------------------------------------------------------------------------
# The dispatcher
# ---------------------------------------------------------------------------------------------

# Per architecture, the extra arguments that make libclang read dispatch.c as that build does.
# clang 14 does not know GCC 12's __builtin_cpu_supports("x86-64-v4") levels: a macro stands in.
ARCHITECTURES = {
    "x86_64": ["--target=x86_64-linux-gnu", "-D__builtin_cpu_supports(level)=1"],
    "aarch64": ["--target=aarch64-linux-gnu", "-isystem", "/usr/aarch64-linux-gnu/include"],
}


def _walk(cursor, kind):
    return [c for c in cursor.walk_preorder() if c.kind == kind]


def _forwarded_call(definition):
    """The call g_variant.<name>(...) in the body of a forwarder, or None."""
    for call in _walk(definition, cindex.CursorKind.CALL_EXPR):
        callee = next(call.get_children())
        members = [m for m in callee.walk_preorder() if m.kind == cindex.CursorKind.MEMBER_REF_EXPR]
        if any(m.spelling == definition.spelling and any(
                r.spelling == "g_variant" for r in _walk(m, cindex.CursorKind.DECL_REF_EXPR))
               for m in members):
            return call
    return None


def read_dispatcher(architecture, path=DISPATCHER):
    """dispatch.c as built for one architecture: its function definitions, the names its
    NSM_FORWARDED_OPERATIONS X-macro lists, the names it dlsym()s and its candidates' ISA names."""
    args = ["-x", "c", "-std=gnu11", "-I", str(HEADER.parent)] + ARCHITECTURES[architecture]
    unit = _parse(path, args, detailed=True)
    definitions, macro_tokens, candidates, extra_lists = {}, None, [], []
    for cursor in unit.cursor.get_children():
        if not _in_main_file(cursor, path):
            continue
        if cursor.kind == cindex.CursorKind.FUNCTION_DECL and cursor.is_definition():
            definitions[cursor.spelling] = cursor
        elif cursor.kind == cindex.CursorKind.MACRO_DEFINITION and \
                cursor.spelling == "NSM_FORWARDED_OPERATIONS":
            macro_tokens = [t.spelling for t in cursor.get_tokens()]
        elif cursor.kind == cindex.CursorKind.MACRO_DEFINITION and \
                cursor.spelling.startswith("NSM_") and cursor.spelling.endswith("_OPERATIONS"):
            # A block of the list kept in its own X-macro, which NSM_FORWARDED_OPERATIONS expands.
            extra_lists.append([t.spelling for t in cursor.get_tokens()])
        elif cursor.kind == cindex.CursorKind.VAR_DECL and cursor.spelling == "k_candidates":
            # {isa, file} per candidate: the first string of each.
            candidates = [_walk(c, cindex.CursorKind.STRING_LITERAL)[0].spelling.strip('"')
                          for c in _walk(cursor, cindex.CursorKind.INIT_LIST_EXPR)[1:]]
    assert macro_tokens, "dispatch.c has no NSM_FORWARDED_OPERATIONS"
    # NSM_FORWARDED_OPERATIONS(X) X(name, (parameters), (arguments)) ...
    x = macro_tokens[2]
    forwarded = [macro_tokens[i + 2] for i in range(3, len(macro_tokens) - 2)
                 if macro_tokens[i] == x and macro_tokens[i + 1] == "("]
    for tokens in extra_lists:
        assert tokens[0] in macro_tokens, "%s is not expanded by NSM_FORWARDED_OPERATIONS" % tokens[0]
        forwarded += [tokens[i + 2] for i in range(3, len(tokens) - 2)
                      if tokens[i] == tokens[2] and tokens[i + 1] == "("]
    dlsym = set()  # the symbol name, dlsym's second argument, of every call
    for call in _walk(unit.cursor, cindex.CursorKind.CALL_EXPR):
        if call.spelling == "dlsym":
            symbol = list(call.get_arguments())[1]
            dlsym.update(s.spelling.strip('"')
                         for s in _walk(symbol, cindex.CursorKind.STRING_LITERAL))
    return {"unit": unit, "definitions": definitions, "forwarded": forwarded, "dlsym": dlsym,
            "candidates": candidates}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def dispatcher(request):
    return read_dispatcher(request.param)


def test_dispatcher_defines_every_header_function_with_its_parameters(header, dispatcher):
    defined = {n: c for n, c in dispatcher["definitions"].items() if n in header.functions}
    assert sorted(defined) == sorted(header.functions)
    for name, cursor in defined.items():
        ours = _function(cursor)
        theirs = header.functions[name]
        assert [p for p, _ in ours.parameters] == [p for p, _ in theirs.parameters], name
        assert [ctypes_of(t) for _, t in ours.parameters] == \
            [ctypes_of(t) for _, t in theirs.parameters], name
        assert ctypes_of(ours.result) is ctypes_of(theirs.result), name


def test_dispatcher_forwards_each_parameter_in_order(header, dispatcher):
    forwarded = dispatcher["forwarded"]
    assert forwarded and len(set(forwarded)) == len(forwarded), forwarded
    assert set(forwarded) <= set(header.functions)
    forwarders = set()
    for name, cursor in dispatcher["definitions"].items():
        call = _forwarded_call(cursor)
        if call is None:
            continue
        forwarders.add(name)
        params = [p.spelling for p in cursor.get_arguments()]
        passed = [[r.spelling for r in _walk(a, cindex.CursorKind.DECL_REF_EXPR)]
                  for a in call.get_arguments()]
        assert passed == [[p] for p in params], (
            "%s forwards (%s) for its parameters (%s)" % (
                name, ", ".join("+".join(p) for p in passed), ", ".join(params)))
    # every name of the X-macro is forwarded (nsm_last_error also is, when a variant is loaded)
    assert set(forwarded) <= forwarders, "not forwarded: %s" % (set(forwarded) - forwarders)


def test_dispatcher_asks_variants_only_for_what_they_export(header, dispatcher):
    only = dispatcher_only()
    assert only and only <= set(header.functions)
    exported_by_variants = set(header.functions) - only
    assert set(dispatcher["forwarded"]) <= dispatcher["dlsym"]
    assert dispatcher["dlsym"] <= exported_by_variants, (
        "dispatch.c looks up %s, which the variants do not export"
        % (dispatcher["dlsym"] - exported_by_variants))
    assert not only & set(dispatcher["forwarded"])


def test_dispatcher_candidates_are_the_headers_isa_names(header, dispatcher):
    assert dispatcher["candidates"]
    assert set(dispatcher["candidates"]) <= set(isa_names(header)), dispatcher["candidates"]
