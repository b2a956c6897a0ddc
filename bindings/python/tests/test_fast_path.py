"""The thin per-call path: for C-contiguous float32/float64 ndarrays along the last axis every
operation calls the library directly through functions bound once. It must be taken for exactly
that case and give the general path's result bit for bit; everything else must still work."""

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref
from nativesoftmax import _native, _ops

DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]
SHAPES = [(1, 10), (7, 33), (3, 4, 5), (10,), (2, 1)]


def _same(a, b):
    """Bit for bit, NaN included (and -0.0 ≠ 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.fixture
def general_path_forbidden(monkeypatch):
    """Makes every general path raise: a call that still succeeds took the fast path."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the general path was taken")

    for name in ("_forward", "_backward", "_cross_entropy_arrays", "_torch_in"):
        monkeypatch.setattr(_ops, name, forbidden)


def _general(op, *args, **kwargs):
    """The same operation through the general path."""
    if op in ("softmax", "log_softmax"):
        return _ops._forward(op, args[0], _ops._LAST, None, None)
    if op.endswith("_backward"):
        return _ops._backward(op, args[0], args[1], _ops._LAST, None, None)
    options = dict(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0,
                   return_grad=False, grad_scale=1.0, grad_out=None)
    options.update(kwargs)
    return _ops._cross_entropy_arrays(*args, **options)


def test_functions_are_bound_once():
    nsm.softmax(np.ones((1, 2), np.float32))  # binds, if nothing did yet
    functions = _native.functions()
    words = _native.word_functions()
    assert functions is _native.functions() and words is _native.word_functions()
    fast = words if _native.WORDS_ALIKE else functions
    for dtype, suffix in ((np.float32, "f32"), (np.float64, "f64")):
        dt = np.dtype(dtype)
        assert _ops._SOFTMAX_FAST[dt] is fast["nsm_softmax_" + suffix]
        assert _ops._LOG_SOFTMAX_BACKWARD_FAST[dt] is fast["nsm_log_softmax_backward_" + suffix]
        assert _ops._CROSS_ENTROPY_FAST[dt] == (fast["nsm_cross_entropy_" + suffix],
                                                fast["nsm_cross_entropy_soft_" + suffix])
    # the typed binding and the word binding are different function objects for the same symbol
    assert functions["nsm_softmax_f32"] is not _native.lib().nsm_softmax_f32
    if _native.WORDS_ALIKE:
        assert words["nsm_softmax_f32"] is not functions["nsm_softmax_f32"]


def test_words_are_the_fast_paths_binding_on_x86_64_and_arm64():
    """The machines the library is built for pass int64_t and pointers alike: there the fast
    paths must get the word binding (a change to WORDS_ALIKE that turned it off everywhere would
    only show as a slower call)."""
    import platform
    if platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        assert _native.WORDS_ALIKE
        assert _native.word_functions(), "no function bound with words"


def test_word_binding_passes_every_int64_bit():
    """Sizes declared c_void_p reach the library as the same 64-bit values: a column count of
    2**32 + 10 (10 if the upper half were lost, which the library would accept) is refused for
    its leading dimension, and -1 (2**32 - 1 if the sign were lost) for its shape. Nothing is
    written."""
    if not _native.WORDS_ALIKE:
        pytest.skip("int64_t and pointers are not passed alike here: no word binding")
    fn = _native.word_functions()["nsm_softmax_f32"]
    x = np.zeros((1, 10), np.float32)
    y = np.full((1, 10), 7.0, np.float32)
    assert fn(1, 10, x.ctypes.data, 10, y.ctypes.data, 10) == _native.NSM_OK  # the binding works
    y[:] = 7.0
    assert fn(1, 2 ** 32 + 10, x.ctypes.data, 10, y.ctypes.data, 10) == \
        _native.NSM_ERR_INVALID_LEADING_DIM
    assert fn(1, -1, x.ctypes.data, 10, y.ctypes.data, 10) == _native.NSM_ERR_INVALID_SHAPE
    assert fn(-1, 10, x.ctypes.data, 10, y.ctypes.data, 10) == _native.NSM_ERR_INVALID_SHAPE
    assert (y == 7.0).all()


def test_data_address_of_every_layout():
    assert _ops._DATA is not None, "the data-pointer probe failed on CPython"
    base = np.arange(60, dtype=np.float64)
    arrays = [base, base[7:], base.reshape(6, 10)[:, 3:], base[::-1], np.asfortranarray(
        base.reshape(6, 10)), base.view(np.uint8)[4:-4].view(np.float64), np.zeros((0, 3)),
        np.float32(1.0) * np.ones(5, np.float32)]
    for a in arrays:
        assert _ops._address(a) == a.ctypes.data, (a.shape, a.strides)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fast_results_are_the_general_paths_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(910 + len(shape))
    z = rng.uniform(-30, 30, size=shape).astype(dtype)
    z.flat[0] = -np.inf
    g = rng.standard_normal(shape).astype(dtype)
    for op in ("softmax", "log_softmax"):
        got = getattr(nsm, op)(z)
        assert _same(got, _general(op, z)), op
        assert _same(got, getattr(nsm, op)(np.asfortranarray(z))), op + " (general: Fortran)"
        back = op + "_backward"
        assert _same(getattr(nsm, back)(g, got), _general(back, g, got)), back
    ref.assert_close(nsm.softmax(z), ref.softmax(z), *((1e-6, 1e-37) if dtype == np.float32
                                                      else (1e-12, 1e-300)), "softmax fast")


def _ce_cases(rng, dtype):
    z = rng.uniform(-10, 10, size=(6, 5)).astype(dtype)
    hard = np.array([0, 4, -100, 2, 3, 1])
    soft = rng.dirichlet(np.ones(5), size=6).astype(dtype)
    weight = rng.uniform(0.5, 2, size=5).astype(dtype)
    for target in (hard, soft):
        for w in (None, weight):
            for reduction in ("none", "sum", "mean"):
                for eps, gs in ((0.0, 1.0), (0.2, -2.5)):
                    yield z, target, dict(weight=w, reduction=reduction, label_smoothing=eps,
                                          grad_scale=gs)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_cross_entropy_fast_equals_general(dtype, monkeypatch):
    rng = np.random.default_rng(920 + (dtype == np.float32))
    for z, t, kwargs in _ce_cases(rng, dtype):
        what = "%s %s %s" % (np.dtype(dtype).name, t.dtype, kwargs)
        want_loss, want_grad = _general("cross_entropy", z, t, return_grad=True, **kwargs)
        want = _general("cross_entropy", z, t, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(_ops, "_cross_entropy_arrays", None)  # a call to it would fail
            m.setattr(_ops, "_torch_in", None)
            loss, grad = nsm.cross_entropy(z, t, return_grad=True, **kwargs)
            alone = nsm.cross_entropy(z, t, **kwargs)
        assert _same(loss, want_loss) and _same(grad, want_grad), what
        assert _same(alone, want), what
        assert type(loss) is type(want_loss), what  # numpy scalar, or array for "none"


def test_fast_path_is_taken_for_its_case_only(general_path_forbidden):
    z = np.random.default_rng(930).standard_normal((4, 10)).astype(np.float32)
    nsm.softmax(z)
    nsm.log_softmax(z, axis=1)
    nsm.softmax_backward(z, z)
    nsm.softmax(z.astype(np.float16))  # float16 goes straight to nsm_softmax_f16
    nsm.cross_entropy(z, np.array([1, 2, 3, 4]), return_grad=True)
    nsm.cross_entropy(z, np.full((4, 10), 0.1, np.float32), weight=np.ones(10, np.float32),
                      reduction="sum", label_smoothing=0.1, ignore_index=3)
    # every other case goes the general way
    others = [lambda: nsm.softmax(z, axis=0), lambda: nsm.softmax(z[:, :5]),
              lambda: nsm.softmax(z.tolist()),
              lambda: nsm.softmax(z, dim=-1), lambda: nsm.softmax(z, out=np.empty_like(z)),
              lambda: nsm.softmax(np.zeros((3, 0), np.float32)),
              lambda: nsm.softmax(np.zeros((0, 3), np.float32)),
              lambda: nsm.softmax(np.asfortranarray(z)),
              lambda: nsm.softmax_backward(z, z.astype(np.float64)),
              lambda: nsm.cross_entropy(z, np.array([1, 2, 3, 4], np.int32)),
              lambda: nsm.cross_entropy(z, np.array([1, 2, 3, 4]), ignore_index=1.5),
              lambda: nsm.cross_entropy(z, np.array([1, 2, 3, 4]), reduction="avg"),
              lambda: nsm.cross_entropy(z, np.array([1, 2, 3, 4]), label_smoothing="abc"),
              lambda: nsm.cross_entropy(z, np.array([1, 2, 3, 4]), weight=np.ones(10)),
              lambda: nsm.cross_entropy(z[0], np.array(1))]
    for i, call in enumerate(others):
        try:
            call()
        except AssertionError as exc:
            assert "general path" in str(exc), exc
        else:
            pytest.fail("case %d took the fast path" % i)


def test_fast_path_errors_are_the_librarys():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        nsm.cross_entropy(z, np.array([0, 4, 1]))
    assert info.value.status_name == "NSM_ERR_LABEL_OUT_OF_RANGE"
    assert info.value.message == _native.text_of(_native.lib().nsm_last_error)
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        nsm.cross_entropy(z, np.array([0, 1, 1]), label_smoothing=1.5, return_grad=True)
    assert info.value.status_name == "NSM_ERR_INVALID_ARGUMENT"
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        nsm.cross_entropy(z, np.array([0, 1, 1]), weight=np.array([1, np.nan, 1, 1], np.float32))
    assert info.value.status_name == "NSM_ERR_INVALID_ARGUMENT"


def test_without_the_data_address_every_call_takes_the_general_path(monkeypatch):
    """Where the probe fails (another interpreter), _DATA is None, the fast tables stay empty and
    addresses come from a.ctypes.data: the same results."""
    rng = np.random.default_rng(940)
    z = rng.standard_normal((5, 7))
    t = np.array([0, 1, 2, 3, 4])
    want = (nsm.softmax(z), nsm.log_softmax_backward(z, z),
            nsm.cross_entropy(z, t, return_grad=True))
    monkeypatch.setattr(_ops, "_DATA", None)
    for table in ("_SOFTMAX_FAST", "_LOG_SOFTMAX_FAST", "_SOFTMAX_BACKWARD_FAST",
                  "_LOG_SOFTMAX_BACKWARD_FAST", "_CROSS_ENTROPY_FAST"):
        monkeypatch.setattr(_ops, table, {})
    _ops._bind()
    assert not _ops._SOFTMAX_FAST and not _ops._CROSS_ENTROPY_FAST
    got = (nsm.softmax(z), nsm.log_softmax_backward(z, z),
           nsm.cross_entropy(z, t, return_grad=True))
    assert _same(got[0], want[0]) and _same(got[1], want[1])
    assert _same(got[2][0], want[2][0]) and _same(got[2][1], want[2][1])


def test_without_the_word_binding_the_fast_paths_use_the_address_binding(monkeypatch):
    """Where int64_t and pointers are not passed alike, word_functions() is empty and the fast
    paths call the address-typed functions: the same results, and still no general path."""
    rng = np.random.default_rng(950)
    z = rng.standard_normal((3, 6)).astype(np.float32)
    g = rng.standard_normal((3, 6)).astype(np.float32)
    hard = np.array([0, 5, 2])
    soft = rng.dirichlet(np.ones(6), size=3).astype(np.float32)

    def calls():
        return (nsm.softmax(z), nsm.log_softmax(z), nsm.softmax_backward(g, z),
                nsm.log_softmax_backward(g, z)) + nsm.cross_entropy(z, hard, return_grad=True) \
            + nsm.cross_entropy(z, soft, reduction="none", return_grad=True)

    want = calls()
    monkeypatch.setattr(_native, "word_functions", lambda: {})
    for table in ("_SOFTMAX_FAST", "_LOG_SOFTMAX_FAST", "_SOFTMAX_BACKWARD_FAST",
                  "_LOG_SOFTMAX_BACKWARD_FAST", "_CROSS_ENTROPY_FAST"):
        monkeypatch.setattr(_ops, table, {})
    _ops._bind()
    functions = _native.functions()
    f32 = np.dtype(np.float32)
    assert _ops._SOFTMAX_FAST[f32] is functions["nsm_softmax_f32"]
    assert _ops._CROSS_ENTROPY_FAST[f32] == (functions["nsm_cross_entropy_f32"],
                                             functions["nsm_cross_entropy_soft_f32"])
    for name in ("_forward", "_backward", "_cross_entropy_arrays", "_torch_in"):
        monkeypatch.setattr(_ops, name, None)  # a call to any of them would fail
    got = calls()
    for i, (a, b) in enumerate(zip(got, want)):
        assert _same(a, b), i


def test_load_binds_no_words_where_int64_and_pointers_differ(monkeypatch):
    monkeypatch.setattr(_native, "WORDS_ALIKE", False)
    handle, functions, words = _native.load(_native.library_path())
    assert words == {} and "nsm_softmax_f32" in functions


def test_default_options_are_packed_once(monkeypatch):
    """cross_entropy with its default ignore_index, label_smoothing and grad_scale takes the
    options packed at import from those very objects (no pack per call) and gives the general
    path's bits; the same values in other objects are packed per call, so a value that compares
    equal to a default but packs differently (-0.0) is never given the default's bytes."""
    rng = np.random.default_rng(960)
    packed = []

    def pack(*values):
        packed.append(values)
        return _native.OPTIONS_FORMAT.pack(*values)

    for red_name, red in _ops._REDUCTIONS.items():
        assert _ops._DEFAULT_OPTIONS[red] == _native.OPTIONS_FORMAT.pack(
            _native.OPTIONS_SIZE, red, -100, 0.0, 1.0, 0)
    for dtype in DTYPES:
        z = rng.uniform(-5, 5, size=(4, 5)).astype(dtype)
        for t in (np.array([1, -100, 4, 0]), rng.dirichlet(np.ones(5), size=4).astype(dtype)):
            for reduction in ("none", "sum", "mean"):
                want = _general("cross_entropy", z, t, reduction=reduction, return_grad=True)
                with monkeypatch.context() as m:
                    m.setattr(_ops, "_pack_options", pack)
                    m.setattr(_ops, "_cross_entropy_arrays", None)
                    m.setattr(_ops, "_torch_in", None)
                    got = nsm.cross_entropy(z, t, reduction=reduction, return_grad=True)
                    assert not packed
                    nsm.cross_entropy(z, t, reduction=reduction, label_smoothing=-0.0)
                    nsm.cross_entropy(z, t, reduction=reduction, ignore_index=int("-100"))
                    nsm.cross_entropy(z, t, reduction=reduction, grad_scale=float("1"))
                assert _same(got[0], want[0]) and _same(got[1], want[1]), (dtype, reduction)
                assert [str(v[3]) for v in packed] == ["-0.0", "0.0", "0.0"]
                assert len(packed) == 3
                packed.clear()


def test_option_values_are_read_through_float_on_both_paths(general_path_forbidden):
    """label_smoothing and grad_scale are converted with float() on the fast path as on the
    general path: a float subclass whose __float__ differs from its stored value gives the
    result of its __float__ value on either path (the fast path packed the stored value)."""
    class Smoothing(float):
        def __float__(self):
            return 0.5

    class Scale(float):
        def __float__(self):
            return 2.0

    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 7)).astype(np.float32)
    t = np.array([0, 6, 2], dtype=np.int64)
    loss, grad = nsm.cross_entropy(z, t, label_smoothing=Smoothing(0.1), grad_scale=Scale(1.0),
                                   return_grad=True)
    expected_loss, expected_grad = nsm.cross_entropy(z, t, label_smoothing=0.5, grad_scale=2.0,
                                                     return_grad=True)
    assert _same(loss, expected_loss) and _same(grad, expected_grad)

