"""descent.fft against torch.fft 2.13: values, dtypes and gradients (float64 tightly, float32 to
tolerance) for every transform, norm mode and odd/even length, plus edge cases and errors.
Finite-difference checks of the transforms' gradients are in tests/specs/complex.py (the op
table) and tests/test_complex.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(1)
NORMS = [None, "backward", "ortho", "forward"]


def _c(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def _r(*shape):
    return RNG.standard_normal(shape)


def _np(t):
    return t.detach().resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def _compare(fn, arrays, precision):
    """fn's output and input gradients (from a real loss: the output's real view times a fixed
    weight) in torch and in descent; dtypes equal, values to the precision's tolerance."""
    results = []
    for lib in (torch, ds):
        ts = []
        for a in arrays:
            kind = "complex" if np.iscomplexobj(a) else "float"
            dt = f"{kind}{2 * precision if kind == 'complex' else precision}"
            ts.append(lib.tensor(np.asarray(a).astype(dt), requires_grad=True))
        y = fn(lib, *ts)
        yr = lib.view_as_real(y.resolve_conj()) if y.is_complex() else y
        w = np.cos(np.arange(yr.numel()) * 0.7).reshape(tuple(yr.shape))
        (yr * lib.tensor(w, dtype=yr.dtype)).sum().backward()
        results.append((y, [t.grad for t in ts]))
    (yt, gt), (yd, gd) = results
    assert str(yd.dtype).split(".")[1] == str(yt.dtype).split(".")[1]
    assert tuple(yd.shape) == tuple(yt.shape)
    tol = dict(rtol=1e-10, atol=1e-10) if precision == 64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_np(yd), _np(yt), **tol)
    for a, b in zip(gd, gt):
        assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]
        np.testing.assert_allclose(_np(a), _np(b), **tol)


CASES = [
    ("fft", lambda T, a, norm: T.fft.fft(a, norm=norm), [_c(3, 5)]),
    ("fft_real_input", lambda T, a, norm: T.fft.fft(a, norm=norm), [_r(3, 5)]),
    ("fft_n_pad_dim0", lambda T, a, norm: T.fft.fft(a, n=7, dim=0, norm=norm), [_c(3, 5)]),
    ("ifft_n_trim", lambda T, a, norm: T.fft.ifft(a, n=2, norm=norm), [_c(3, 5)]),
    ("ifft_real_input", lambda T, a, norm: T.fft.ifft(a, dim=-2, norm=norm), [_r(4, 2)]),
    ("fft2", lambda T, a, norm: T.fft.fft2(a, norm=norm), [_c(2, 3, 4)]),
    ("ifft2_s", lambda T, a, norm: T.fft.ifft2(a, s=(4, 2), norm=norm), [_c(2, 3, 4)]),
    ("fftn", lambda T, a, norm: T.fft.fftn(a, norm=norm), [_c(2, 3, 4)]),
    ("fftn_s_only", lambda T, a, norm: T.fft.fftn(a, s=(5, 3), norm=norm), [_r(2, 3, 4)]),
    (
        "ifftn_s_dim",
        lambda T, a, norm: T.fft.ifftn(a, s=(5, -1), dim=(0, -1), norm=norm),
        [_c(2, 3, 4)],
    ),  # fmt: skip
    ("rfft2", lambda T, a, norm: T.fft.rfft2(a, norm=norm), [_r(2, 3, 4)]),
    ("rfftn_odd", lambda T, a, norm: T.fft.rfftn(a, norm=norm), [_r(2, 3, 5)]),
    ("rfftn_s", lambda T, a, norm: T.fft.rfftn(a, s=(4, 7), norm=norm), [_r(2, 3, 5)]),
    ("irfft2", lambda T, a, norm: T.fft.irfft2(a, norm=norm), [_c(2, 3, 4)]),
    ("irfftn", lambda T, a, norm: T.fft.irfftn(a, norm=norm), [_c(2, 3, 4)]),
    (
        "irfftn_s_dim",
        lambda T, a, norm: T.fft.irfftn(a, s=(3, 5), dim=(0, 2), norm=norm),
        [_c(2, 3, 4)],
    ),  # fmt: skip
    (
        "roundtrip",
        lambda T, a, norm: T.fft.irfft(T.fft.rfft(a, norm=norm), n=5, norm=norm),
        [_r(5)],
    ),  # fmt: skip
    (
        "fft_ifft_chain",
        lambda T, a, norm: T.fft.ifft(T.fft.fft(a, norm=norm) * a, norm=norm),
        [_c(6)],
    ),  # fmt: skip
]
CASES += [
    ("hfft2", lambda T, a, norm: T.fft.hfft2(a, norm=norm), [_c(2, 3, 4)]),
    ("hfft2_s", lambda T, a, norm: T.fft.hfft2(a, s=(4, 5), norm=norm), [_c(2, 3, 4)]),
    ("ihfft2", lambda T, a, norm: T.fft.ihfft2(a, norm=norm), [_r(2, 3, 5)]),
    ("hfftn", lambda T, a, norm: T.fft.hfftn(a, norm=norm), [_c(2, 3, 4)]),
    (
        "hfftn_s_dim",
        lambda T, a, norm: T.fft.hfftn(a, s=(3, 6), dim=(0, 2), norm=norm),
        [_c(2, 3, 4)],
    ),  # fmt: skip
    ("ihfftn", lambda T, a, norm: T.fft.ihfftn(a, norm=norm), [_r(2, 3, 5)]),
    ("ihfftn_s", lambda T, a, norm: T.fft.ihfftn(a, s=(4, 4), norm=norm), [_r(2, 3, 5)]),
]
for _n in (None, 4, 5, 8, 9):
    CASES += [
        (f"rfft_n{_n}", lambda T, a, norm, n=_n: T.fft.rfft(a, n=n, norm=norm), [_r(3, 6)]),
        (f"irfft_n{_n}", lambda T, a, norm, n=_n: T.fft.irfft(a, n=n, norm=norm), [_c(2, 4)]),
        (f"hfft_n{_n}", lambda T, a, norm, n=_n: T.fft.hfft(a, n=n, norm=norm), [_c(2, 4)]),
        (f"ihfft_n{_n}", lambda T, a, norm, n=_n: T.fft.ihfft(a, n=n, norm=norm), [_r(2, 5)]),
        (
            f"irfft_dim0_n{_n}",
            lambda T, a, norm, n=_n: T.fft.irfft(a, n=n, dim=0, norm=norm),
            [_c(3, 2)],
        ),  # fmt: skip
    ]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, fn, arrays", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_float64(name, fn, arrays, norm):
    _compare(lambda T, *xs: fn(T, *xs, norm), arrays, 64)


@pytest.mark.parametrize("name, fn, arrays", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_float32(name, fn, arrays):
    _compare(lambda T, *xs: fn(T, *xs, "ortho"), arrays, 32)


@pytest.mark.parametrize(
    "fn",
    [
        lambda T, x: T.fft.fft(x),
        lambda T, x: T.fft.rfft(x),
        lambda T, x: T.fft.ihfft(x),
        lambda T, x: T.fft.irfft(T.fft.rfft(x)),
        lambda T, x: T.fft.fft2(x.reshape(2, 2)),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "complex64"])
def test_dtypes_match_torch(fn, dtype):
    def go(T):
        return fn(T, T.ones(4, dtype=getattr(T, dtype)))

    try:
        want = go(torch)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            go(ds)
        return
    got = go(ds)
    assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda T: T.fft.fft(T.zeros(0)), RuntimeError),
        (lambda T: T.fft.fft(T.tensor(1.0)), IndexError),
        (lambda T: T.fft.fft(T.ones(4), norm="bad"), RuntimeError),
        (lambda T: T.fft.fft(T.ones(4), n=0), RuntimeError),
        (lambda T: T.fft.rfft(T.ones(4, dtype=T.cfloat)), RuntimeError),
        (lambda T: T.fft.ihfft(T.ones(4, dtype=T.cfloat)), RuntimeError),
        (lambda T: T.fft.fftn(T.ones(4, 4), s=(2,), dim=(0, 1)), RuntimeError),
        (lambda T: T.fft.fftn(T.ones(4, 4), dim=(0, 0)), RuntimeError),
        (lambda T: T.fft.fft(T.ones(4), dim=2), IndexError),
        (lambda T: T.fft.irfft(T.ones(1, dtype=T.cfloat)), RuntimeError),
        (lambda T: T.fft.fft(T.ones(4, dtype=T.half)), RuntimeError),
        (lambda T: T.fft.fftshift(T.ones(())), RuntimeError),
    ],
)
def test_errors_match_torch(make, error):
    with pytest.raises(error) as theirs:
        make(torch)
    with pytest.raises(error) as ours:
        make(ds)
    head = str(theirs.value).split("(")[0][:30]
    assert head in str(ours.value), (str(ours.value), str(theirs.value))


def test_zero_d_fftn_and_empty_batch():
    z = ds.fft.fftn(ds.tensor(2.0))
    assert z.dtype == ds.complex64 and z.shape == () and z.item() == 2
    assert repr(z) == repr(torch.fft.fftn(torch.tensor(2.0))).replace("torch.", "descent.")
    # an empty batch transforms to an empty result (torch's MKL build refuses this case)
    e = ds.zeros(0, 4, requires_grad=True)
    y = ds.fft.rfft(e)
    assert y.shape == (0, 3) and y.dtype == ds.complex64
    y.abs().sum().backward()
    assert e.grad.shape == (0, 4)


@pytest.mark.parametrize("n, d", [(1, 1.0), (4, 1.0), (5, 0.5), (8, 2.0)])
def test_frequencies(n, d):
    for name in ("fftfreq", "rfftfreq"):
        got, want = getattr(ds.fft, name)(n, d), getattr(torch.fft, name)(n, d)
        assert got.dtype == ds.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-7)
    got = ds.fft.fftfreq(n, d, dtype=ds.float64)
    assert got.dtype == ds.float64
    np.testing.assert_array_equal(got.numpy(), torch.fft.fftfreq(n, d, dtype=torch.float64))


@pytest.mark.parametrize(
    "fn",
    [
        lambda T, x: T.fft.fftshift(x),
        lambda T, x: T.fft.ifftshift(x),
        lambda T, x: T.fft.fftshift(x, dim=0),
        lambda T, x: T.fft.ifftshift(x, dim=(-1,)),
        lambda T, x: T.fft.ifftshift(T.fft.fftshift(x)),
    ],
)
def test_shifts_and_their_gradients(fn):
    _compare(lambda T, x: fn(T, x) * 1.5, [_r(5, 4)], 64)
    _compare(lambda T, x: fn(T, x), [_c(3, 6)], 64)


def test_spectral_filter_trains_like_torch():
    """A learned frequency-domain filter (rfft, multiply, irfft) fitted with SGD: the same
    losses in both libraries."""
    x = _r(4, 16).astype(np.float32)
    target = np.roll(x, 1, axis=1)
    losses = []
    for T in (torch, ds):
        w = T.zeros(9, 2, requires_grad=True)
        opt = T.optim.SGD([w], lr=0.5)
        run = []
        for _ in range(5):
            spec = T.fft.rfft(T.tensor(x), norm="ortho") * T.view_as_complex(
                w + T.tensor([1.0, 0.0])
            )
            y = T.fft.irfft(spec, n=16, norm="ortho")
            loss = (y - T.tensor(target)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# stft / istft (descent/spectral.py)

_SIG = _r(50)
_SIG_B = _r(2, 40)
_WIN = np.hanning(16) + 0.1
_SPEC = torch.stft(
    torch.tensor(_SIG),
    16,
    hop_length=4,
    window=torch.hann_window(16, dtype=torch.float64),
    return_complex=True,
).numpy()
_SPEC_B = torch.stft(torch.tensor(_SIG_B), 8, hop_length=2, return_complex=True).numpy()


def _hann(T):
    return T.hann_window(16, dtype=T.float64)


STFT_CASES = [
    ("stft", lambda T, a: T.stft(a, 16, return_complex=True), [_SIG]),
    ("stft_window_hop", lambda T, a, w: T.stft(a, 16, 5, 16, w, return_complex=True), [_SIG, _WIN]),
    (
        "stft_short_window_normalized_batch",
        lambda T, a, w: T.stft(a, 16, 4, 10, w, normalized=True, return_complex=True),
        [_SIG_B, _WIN[:10]],
    ),  # fmt: skip
    (
        "stft_not_centered_twosided",
        lambda T, a: T.stft(a, 8, 3, center=False, onesided=False, return_complex=True),
        [_SIG],
    ),  # fmt: skip
    (
        "stft_constant_pad",
        lambda T, a: T.stft(a, 8, pad_mode="constant", return_complex=True),
        [_SIG_B],
    ),  # fmt: skip
    ("stft_method", lambda T, a: a.stft(8, hop_length=2, return_complex=True), [_SIG]),
    ("istft", lambda T, s: T.istft(s, 16, 4, window=_hann(T)), [_SPEC]),
    ("istft_length_short", lambda T, s: T.istft(s, 16, 4, window=_hann(T), length=45), [_SPEC]),
    (
        "istft_normalized_not_centered",
        lambda T, s: T.istft(s, 16, 4, window=_hann(T) + 0.1, normalized=True, center=False),
        [_SPEC],
    ),  # fmt: skip
    ("istft_window_gradient", lambda T, s, w: T.istft(s, 16, 4, window=w), [_SPEC, _WIN]),
    ("istft_batch_default_window", lambda T, s: T.istft(s, 8, 2), [_SPEC_B]),
    (
        "round_trip",
        lambda T, a: T.istft(
            T.stft(a, 16, 4, window=_hann(T), return_complex=True),
            16,
            4,
            window=_hann(T),
            length=50,
        ),
        [_SIG],
    ),  # fmt: skip
]


@pytest.mark.parametrize("name, fn, arrays", STFT_CASES, ids=[c[0] for c in STFT_CASES])
def test_stft_istft_match_torch(name, fn, arrays):
    _compare(fn, arrays, 64)


def test_stft_round_trip_recovers_the_signal_and_float32_stays_float32():
    x = ds.tensor(_SIG, dtype=ds.float32)
    w = ds.hann_window(16)
    spec = ds.stft(x, 16, hop_length=4, window=w, return_complex=True)
    assert spec.dtype == ds.complex64 and tuple(spec.shape) == (9, 13)
    y = ds.istft(spec, 16, hop_length=4, window=w, length=50)
    assert y.dtype == ds.float32
    np.testing.assert_allclose(y.numpy(), _SIG, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.stft(T.tensor(_SIG), 16),  # return_complex is required for real input
        lambda T: T.istft(T.tensor(_SPEC), 16, 4, window=_hann(T), center=False),  # NOLA
        lambda T: T.stft(T.tensor(_SIG), 16, window=T.ones(5), return_complex=True),
    ],
)
def test_stft_errors_match_torch(make):
    with pytest.raises(RuntimeError):
        make(torch)
    with pytest.raises(RuntimeError):
        make(ds)
