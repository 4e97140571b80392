"""Specs of the complex ops (descent/ops/complex.py) and of descent.fft's transforms.

The table's inputs and outputs are real, so each spec builds complex values with
view_as_complex / complex / polar and returns a real view of the result: its finite-difference
and PyTorch checks then test PyTorch's complex gradient convention through real losses
(docs/complex.md)."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec


def _c(a):
    """(..., 2) NumPy pairs -> complex array."""
    return a[..., 0] + 1j * a[..., 1]


def _r(z):
    """complex array -> (..., 2) NumPy pairs."""
    return np.stack([z.real, z.imag], -1)


def _away_from_zero(rng, dtype):
    """pairs whose complex values keep |z| >= 0.5 (angle is not differentiable at 0)."""
    z = rng.uniform(0.5, 2.0, (3, 4)) * np.exp(1j * rng.uniform(-3.0, 3.0, (3, 4)))
    return [_r(z).astype(dtype)]


SPECS = [
    Spec(
        name="complex_view_mul",
        fn=lambda a, b: ds.view_as_real(ds.view_as_complex(a) * ds.view_as_complex(b)),
        ref=lambda a, b: _r(_c(a) * _c(b)),
        torch_fn=lambda a, b: torch.view_as_real(
            torch.view_as_complex(a) * torch.view_as_complex(b)
        ),
        shapes=[(3, 4, 2), (3, 4, 2)],
        covers=("ViewAsComplex", "ViewAsReal", "Mul"),
    ),
    Spec(
        name="complex_real_imag",
        fn=lambda a: ds.real(ds.view_as_complex(a) ** 2) * ds.imag(ds.view_as_complex(a).exp()),
        ref=lambda a: (_c(a) ** 2).real * np.exp(_c(a)).imag,
        torch_fn=lambda a: (
            torch.real(torch.view_as_complex(a) ** 2) * torch.imag(torch.view_as_complex(a).exp())
        ),
        shapes=[(3, 4, 2)],
        covers=("Real", "Imag", "ViewAsComplex"),
    ),
    Spec(
        name="complex_conj_div",
        fn=lambda a, b: ds.view_as_real(ds.view_as_complex(a).conj() / ds.view_as_complex(b)),
        ref=lambda a, b: _r(np.conj(_c(a)) / _c(b)),
        torch_fn=lambda a, b: torch.view_as_real(
            (torch.view_as_complex(a).conj() / torch.view_as_complex(b)).resolve_conj()
        ),
        shapes=[(3, 4, 2), (3, 4, 2)],
        domain=[(-2.0, 2.0), (0.5, 2.0)],
        covers=("Conj", "Div"),
    ),
    Spec(
        name="complex_abs_angle",
        fn=lambda a: ds.view_as_complex(a).abs() * 2 + ds.view_as_complex(a).angle(),
        ref=lambda a: np.abs(_c(a)) * 2 + np.angle(_c(a)),
        torch_fn=lambda a: torch.view_as_complex(a).abs() * 2 + torch.view_as_complex(a).angle(),
        shapes=[(3, 4, 2)],
        inputs=_away_from_zero,
        covers=("Angle", "Abs"),
    ),
    Spec(
        name="complex_sgn",
        fn=lambda a: ds.view_as_real(ds.sgn(ds.view_as_complex(a)) * ds.view_as_complex(a)),
        ref=lambda a: _r(_c(a) / np.abs(_c(a)) * _c(a)),
        torch_fn=lambda a: torch.view_as_real(
            torch.sgn(torch.view_as_complex(a)) * torch.view_as_complex(a)
        ),
        shapes=[(3, 4, 2)],
        inputs=_away_from_zero,
        covers=("ComplexSgn",),
    ),
    Spec(
        name="complex_from_parts",
        fn=lambda a, b: ds.view_as_real(ds.complex(a, b) * ds.polar(b, a)),
        ref=lambda a, b: _r((a + 1j * b) * (b * np.exp(1j * a))),
        torch_fn=lambda a, b: torch.view_as_real(torch.complex(a, b) * torch.polar(b, a)),
        shapes=[(3, 4), (3, 4)],
        domain=[(-2.0, 2.0), (0.5, 2.0)],  # abs > 0: polar's gradient follows sgn(z)
        covers=("Complex", "Polar"),
    ),
    Spec(
        name="complex_matmul_exp",
        fn=lambda a, b: ds.view_as_real(ds.view_as_complex(a) @ ds.view_as_complex(b).tanh()),
        ref=lambda a, b: _r(_c(a) @ np.tanh(_c(b))),
        torch_fn=lambda a, b: torch.view_as_real(
            torch.view_as_complex(a) @ torch.view_as_complex(b).tanh()
        ),
        shapes=[(3, 4, 2), (4, 2, 2)],
        domain=(-1.0, 1.0),
        covers=("MatMul", "Tanh"),
    ),
    Spec(
        name="fft_c2c_ortho",
        fn=lambda a: ds.view_as_real(ds.fft.fft(ds.view_as_complex(a), n=6, norm="ortho")),
        ref=lambda a: _r(np.fft.fft(_c(a), n=6, norm="ortho")),
        torch_fn=lambda a: torch.view_as_real(
            torch.fft.fft(torch.view_as_complex(a), n=6, norm="ortho")
        ),
        shapes=[(3, 5, 2)],
        covers=("FFTC2C", "Resize"),
    ),
    Spec(
        name="fft_ifftn",
        fn=lambda a: ds.view_as_real(ds.fft.ifftn(ds.view_as_complex(a), s=(2, 3))),
        ref=lambda a: _r(np.fft.ifftn(_c(a), s=(2, 3), axes=(0, 1))),
        torch_fn=lambda a: torch.view_as_real(torch.fft.ifftn(torch.view_as_complex(a), s=(2, 3))),
        shapes=[(3, 4, 2)],
        covers=("FFTC2C", "Resize"),
    ),
    Spec(
        name="fft_rfft_odd",
        fn=lambda a: ds.view_as_real(ds.fft.rfft(a, n=7)),
        ref=lambda a: _r(np.fft.rfft(a, n=7)),
        torch_fn=lambda a: torch.view_as_real(torch.fft.rfft(a, n=7)),
        shapes=[(3, 6)],
        covers=("FFTR2C",),
    ),
    Spec(
        name="fft_rfft2_forward",
        fn=lambda a: ds.view_as_real(ds.fft.rfft2(a, norm="forward")),
        ref=lambda a: _r(np.fft.rfft2(a, norm="forward")),
        torch_fn=lambda a: torch.view_as_real(torch.fft.rfft2(a, norm="forward")),
        shapes=[(2, 3, 4)],
        covers=("FFTR2C",),
    ),
    Spec(
        name="fft_irfft_even",
        fn=lambda a: ds.fft.irfft(ds.view_as_complex(a), n=6),
        ref=lambda a: np.fft.irfft(_c(a), n=6),
        torch_fn=lambda a: torch.fft.irfft(torch.view_as_complex(a), n=6),
        shapes=[(3, 4, 2)],
        covers=("FFTC2R",),
    ),
    Spec(
        name="fft_irfftn_odd_ortho",
        fn=lambda a: ds.fft.irfftn(ds.view_as_complex(a), s=(3, 5), norm="ortho"),
        ref=lambda a: np.fft.irfftn(_c(a), s=(3, 5), axes=(0, 1), norm="ortho"),
        torch_fn=lambda a: torch.fft.irfftn(torch.view_as_complex(a), s=(3, 5), norm="ortho"),
        shapes=[(2, 3, 2)],
        covers=("FFTC2R", "Resize"),
    ),
    Spec(
        name="fft_hfft_ihfft",
        fn=lambda a: (
            ds.fft.hfft(ds.view_as_complex(a))[..., :6]
            + ds.fft.ihfft(ds.view_as_complex(a).real, n=11).abs()
        ),
        ref=lambda a: np.fft.hfft(_c(a))[..., :6] + np.abs(np.fft.ihfft(_c(a).real, n=11)),
        torch_fn=lambda a: (
            torch.fft.hfft(torch.view_as_complex(a))[..., :6]
            + torch.fft.ihfft(torch.view_as_complex(a).real, n=11).abs()
        ),
        shapes=[(2, 6, 2)],
        inputs=lambda rng, dtype: [rng.uniform(0.5, 2.0, (2, 6, 2)).astype(dtype)],
        covers=("FFTC2R", "FFTR2C", "Conj"),
    ),
]
