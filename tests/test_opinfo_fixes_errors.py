"""Error parity with PyTorch's OpInfo `error_inputs` (tests/opinfo_harness.py --variant errors):
for each input PyTorch refuses, descent raises an exception of PyTorch's type, so that a user's
`except RuntimeError:` (or TypeError / IndexError) catches descent's error where it catches
PyTorch's. Each case is run against torch first, so a case that torch accepts fails here too.
"""

import numpy as np
import pytest
import torch

import descent

# (id, expected exception type, f(m) -> the call, m being the torch or the descent module)
CASES = [
    # shape and index ops
    ("diag_0d", RuntimeError, lambda m: m.diag(m.zeros(()))),
    ("diag_3d", RuntimeError, lambda m: m.diag(m.zeros(1, 1, 1))),
    ("diagonal_same_dims", RuntimeError, lambda m: m.diagonal(m.zeros(3, 4), 0, 1, 1)),
    ("linalg_diagonal_same", RuntimeError,
     lambda m: m.linalg.diagonal(m.zeros(3, 4, 5), dim1=1, dim2=1)),
    ("trace_3d", RuntimeError, lambda m: m.trace(m.zeros(3, 4, 5))),
    ("movedim_lengths", RuntimeError, lambda m: m.movedim(m.zeros(2, 3, 4), [0, 1], [1, 0, 2])),
    ("movedim_repeated", RuntimeError, lambda m: m.movedim(m.zeros(2, 3, 4), [0, -3], [1, 0])),
    ("narrow_0d", RuntimeError, lambda m: m.narrow(m.zeros(()), 0, 0, 1)),
    ("narrow_too_long", RuntimeError, lambda m: m.narrow(m.zeros(5, 10), 1, 0, 11)),
    ("narrow_negative_length", RuntimeError, lambda m: m.narrow(m.zeros(10), 0, 0, -1)),
    ("narrow_start_1d", RuntimeError,
     lambda m: m.narrow(m.zeros(4, 10), 1, m.tensor([1, 2]), 2)),
    ("narrow_start_bool", RuntimeError,
     lambda m: m.narrow(m.zeros(4, 10), 1, m.tensor(True), 2)),
    ("narrow_start_out_of_range", IndexError, lambda m: m.narrow(m.zeros(4, 10), 1, 11, 0)),
    ("narrow_copy_too_long", RuntimeError, lambda m: m.narrow_copy(m.zeros(5, 10), 1, 0, 11)),
    ("narrow_copy_dim_past_end", RuntimeError,
     lambda m: m.narrow_copy(m.zeros(10, 5, 20), 3, 0, 0)),
    ("narrow_copy_dim_below", IndexError,
     lambda m: m.narrow_copy(m.zeros(10, 5, 20), -4, 0, 0)),
    ("kthvalue_k", RuntimeError, lambda m: m.kthvalue(m.zeros(2, 2), 3)),
    ("kthvalue_k_0d", RuntimeError, lambda m: m.kthvalue(m.zeros(()), 3)),
    ("hstack_empty", RuntimeError, lambda m: m.hstack([])),
    ("vstack_empty", RuntimeError, lambda m: m.vstack([])),
    ("hsplit_str", TypeError, lambda m: m.hsplit(m.zeros(5, 5, 5), "abc")),
    ("vsplit_str", TypeError, lambda m: m.vsplit(m.zeros(5, 5, 5), "abc")),
    ("index_add_source_shape", RuntimeError,
     lambda m: m.index_add(m.zeros(3, 2), 0, m.tensor([0, 1]), m.ones(2))),
    ("index_add_0d_source", RuntimeError,
     lambda m: m.index_add(m.zeros(3), 0, m.tensor([1]), m.tensor(5.0))),
    ("index_add_index_count", RuntimeError,
     lambda m: m.index_add(m.zeros(3, 2), 0, m.tensor([0, 1]), m.ones(3, 2))),
    ("scatter_index_ndim", RuntimeError,
     lambda m: m.scatter(m.zeros(3, 5, 3), 0, m.zeros(2, 2, dtype=m.int64), m.ones(2, 5))),
    ("scatter_src_ndim", RuntimeError,
     lambda m: m.scatter(m.zeros(3, 5), 0, m.zeros(2, 2, dtype=m.int64), m.ones(2, 5, 2))),
    ("scatter_add_index_ndim", RuntimeError,
     lambda m: m.scatter_add(m.zeros(3, 5, 3), 0, m.zeros(2, 2, dtype=m.int64), m.ones(2, 5))),
    ("bucketize_2d_boundaries", RuntimeError,
     lambda m: m.bucketize(m.zeros(5, 5, 5), m.zeros(5, 5))),
    ("masked_fill_1d_value", RuntimeError,
     lambda m: m.masked_fill(m.zeros(2, 2), m.tensor(True), m.ones(1))),
    ("masked_fill_complex", RuntimeError,
     lambda m: m.masked_fill(m.zeros(2, 2), m.tensor(True), 1j)),
    ("masked_fill_complex_tensor", RuntimeError,
     lambda m: m.masked_fill(m.zeros(2, dtype=m.int64), m.tensor(True),
                             m.tensor(1j, dtype=m.complex64))),
    ("masked_fill__1d_value", RuntimeError,
     lambda m: m.zeros(2, 2).masked_fill_(m.tensor(True), m.ones(1))),
    # reductions
    ("amax_duplicate_dims", RuntimeError, lambda m: m.amax(m.zeros(5, 5), dim=[0, 0])),
    ("amin_duplicate_dims", RuntimeError, lambda m: m.amin(m.zeros(5, 5), dim=[0, -2])),
    ("sum_duplicate_dims", RuntimeError, lambda m: m.sum(m.zeros(5, 5), dim=[1, 1])),
    ("mean_int_dtype", RuntimeError,
     lambda m: m.mean(m.zeros(3, 4), [], dtype=m.int64)),
    ("gradient_duplicate_dims", RuntimeError,
     lambda m: m.gradient(m.zeros(3, 3), spacing=0.1, dim=[1, 1])),
    ("isclose_rtol", RuntimeError, lambda m: m.isclose(m.zeros(()), m.zeros(()), rtol=-0.4)),
    ("isclose_atol", RuntimeError, lambda m: m.isclose(m.zeros(()), m.zeros(()), atol=-0.4)),
    ("linalg_cross_length", RuntimeError,
     lambda m: m.linalg.cross(m.zeros(5, 3), m.zeros(5, 1))),
    ("linalg_cross_ndim", RuntimeError,
     lambda m: m.linalg.cross(m.zeros(5, 5, 3), m.zeros(5, 3))),
    ("linalg_cross_dim", IndexError,
     lambda m: m.linalg.cross(m.zeros(5, 2), m.zeros(5, 2), dim=2)),
    # creation and random
    ("arange_inf", RuntimeError, lambda m: m.arange(0, float("inf"), 2)),
    ("arange_neg_inf", RuntimeError, lambda m: m.arange(float("-inf"), 1, 2)),
    ("linspace_1d_bounds", RuntimeError,
     lambda m: m.linspace(m.zeros(2), m.ones(2), 1)),
    ("logspace_float_steps", TypeError, lambda m: m.logspace(0, 3, 1.0)),
    ("logspace_1d_bounds", RuntimeError, lambda m: m.logspace(m.zeros(2), m.ones(2), 1)),
    ("exponential_lambda", RuntimeError, lambda m: m.zeros(10).exponential_(0)),
    ("normal_std", RuntimeError, lambda m: m.zeros(10).normal_(0, -1)),
    ("uniform_range", RuntimeError, lambda m: m.zeros(10).uniform_(3, -1)),
    ("multinomial_int", RuntimeError,
     lambda m: m.multinomial(m.ones(1, 2, dtype=m.int64), 2)),
    ("multinomial_zero_samples", RuntimeError, lambda m: m.multinomial(m.ones(2), 0)),
    ("multinomial_negative_samples", RuntimeError, lambda m: m.multinomial(m.ones(2), -1)),
    # nn.functional: normalisation, embedding, activations, losses
    ("layer_norm_empty_shape", RuntimeError,
     lambda m: m.native_layer_norm(m.zeros(1, 2, 3), [], None, None, 1e-5)),
    ("layer_norm_weight_shape", RuntimeError,
     lambda m: m.nn.functional.layer_norm(m.zeros(1, 2, 3), [1, 2, 3], m.ones(1, 2))),
    ("layer_norm_bias_shape", RuntimeError,
     lambda m: m.nn.functional.layer_norm(m.zeros(1, 2, 3), [1, 2, 3], None, m.ones(1, 2))),
    ("rms_norm_empty_shape", RuntimeError,
     lambda m: m.nn.functional.rms_norm(m.zeros(1, 2, 3), [])),
    ("rms_norm_weight_shape", RuntimeError,
     lambda m: m.nn.functional.rms_norm(m.zeros(1, 2, 3), [1, 2, 3], m.ones(1, 2))),
    ("group_norm_1d", RuntimeError, lambda m: m.nn.functional.group_norm(m.zeros(1), 1)),
    ("group_norm_groups", RuntimeError,
     lambda m: m.nn.functional.group_norm(m.zeros(2, 7, 4), 2)),
    ("embedding_weight_0d", RuntimeError,
     lambda m: m.nn.functional.embedding(m.zeros(2, 2, dtype=m.int64), m.zeros(()))),
    ("embedding_weight_3d", RuntimeError,
     lambda m: m.nn.functional.embedding(m.zeros(2, 2, dtype=m.int64), m.zeros(1, 1, 1))),
    ("rrelu_bounds", RuntimeError,
     lambda m: m.nn.functional.rrelu(m.zeros(5, 5), lower=0.3, upper=0.1)),
    ("rrelu_bounds_generator", RuntimeError,
     lambda m: m.rrelu(m.zeros(5, 5), 0.3, 0.1, True, m.Generator().manual_seed(0))),
    ("softshrink_lambda", RuntimeError,
     lambda m: m.nn.functional.softshrink(m.zeros(1), -0.5)),
    ("gelu_approximate", RuntimeError,
     lambda m: m.nn.functional.gelu(m.zeros(()), approximate="asdf")),
    ("triplet_ndim", RuntimeError,
     lambda m: m.nn.functional.triplet_margin_loss(m.zeros(3), m.zeros(3, 4), m.zeros(3, 4))),
    ("huber_delta_zero", RuntimeError,
     lambda m: m.nn.functional.huber_loss(m.zeros(5, 4), m.zeros(5, 4), delta=0)),
    ("huber_delta_negative", RuntimeError,
     lambda m: m.nn.functional.huber_loss(m.zeros(5, 4), m.zeros(5, 4), delta=-1)),
    ("linear_ce_ignore_probs", RuntimeError,
     lambda m: m.nn.functional.linear_cross_entropy(
         m.zeros(2, 3), m.zeros(2, 3), m.full((2, 2), 0.5), ignore_index=0)),
    ("linear_ce_unbatched_kdim", RuntimeError,
     lambda m: m.nn.functional.linear_cross_entropy(
         m.zeros(3), m.zeros(2, 4, 3), m.zeros(2, 4))),
    # nn.functional: pooling
    ("adaptive_avg_pool1d_empty", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool1d(m.zeros(1, 2, 3), [])),
    ("adaptive_avg_pool1d_negative", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool1d(m.zeros(1, 1, 1), [-1])),
    ("adaptive_avg_pool2d_empty", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool2d(m.zeros(1, 2, 3, 4), [])),
    ("adaptive_avg_pool2d_negative", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool2d(m.zeros(1, 1, 1, 1), [-1, 0])),
    ("adaptive_avg_pool3d_empty", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool3d(m.zeros(1, 2, 3, 4), [])),
    ("adaptive_avg_pool3d_negative", RuntimeError,
     lambda m: m.nn.functional.adaptive_avg_pool3d(m.zeros(1, 1, 1, 1, 1), [-1, 0, 2])),
    ("adaptive_max_pool1d_empty", RuntimeError,
     lambda m: m.nn.functional.adaptive_max_pool1d(m.zeros(1, 2, 3), [])),
    ("adaptive_max_pool1d_negative", RuntimeError,
     lambda m: m.nn.functional.adaptive_max_pool1d(m.zeros(1, 1, 1), [-1])),
    ("adaptive_max_pool2d_empty", RuntimeError,
     lambda m: m.nn.functional.adaptive_max_pool2d(m.zeros(1, 2, 3, 4), [])),
    ("adaptive_max_pool3d_negative", RuntimeError,
     lambda m: m.nn.functional.adaptive_max_pool3d(m.zeros(1, 1, 1, 1, 1), [-1, 0, 2])),
    ("avg_pool1d_negative_pad", RuntimeError,
     lambda m: m.nn.functional.avg_pool1d(m.zeros(0, 1, 49), 2, 50, -1)),
    ("avg_pool3d_negative_pad", RuntimeError,
     lambda m: m.nn.functional.avg_pool3d(m.zeros(0, 1, 49, 50), 2, 50, -1)),
    ("avg_pool3d_large_pad", RuntimeError,
     lambda m: m.nn.functional.avg_pool3d(m.zeros(0, 1, 49, 50), 2, 50, 4)),
    ("avg_pool3d_3d_input", RuntimeError,
     lambda m: m.nn.functional.avg_pool3d(m.zeros(0, 1, 49), 2, 50, 0)),
    ("max_pool1d_0d", RuntimeError, lambda m: m.nn.functional.max_pool1d(m.zeros(()), 1)),
    ("max_pool1d_1d", RuntimeError, lambda m: m.nn.functional.max_pool1d(m.zeros(0), 1)),
    ("max_pool1d_no_channels", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(0, 10), 1)),
    ("max_pool1d_empty_length", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(1, 10, 0), 1)),
    ("max_pool1d_stride_0", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(3, 3, 3), 1, stride=0)),
    ("max_pool1d_kernel_0", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(0, 1, 49), 0)),
    ("max_pool1d_dilation_0", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(3, 3, 3), 1, 1, 0, 0)),
    ("max_pool1d_negative_pad", RuntimeError,
     lambda m: m.nn.functional.max_pool1d(m.zeros(0, 1, 49), 2, 50, -1, return_indices=True)),
    ("max_pool2d_no_width", RuntimeError,
     lambda m: m.nn.functional.max_pool2d(m.zeros(2, 1, 10, 0), 1)),
    ("max_pool3d_no_channels", RuntimeError,
     lambda m: m.nn.functional.max_pool3d(m.zeros(0, 1, 2, 10), 1)),
    ("max_pool3d_empty_depth", RuntimeError,
     lambda m: m.nn.functional.max_pool3d(m.zeros(2, 1, 0, 1, 2), 1)),
    ("max_pool3d_too_small", RuntimeError,
     lambda m: m.nn.functional.max_pool3d(m.zeros(1, 1, 1, 4, 4), 2)),
    ("max_unpool1d_indices", RuntimeError,
     lambda m: m.nn.functional.max_unpool1d(m.zeros(8, 8), m.zeros(8, 7, dtype=m.int64), 3, 2)),
    ("max_unpool2d_indices", RuntimeError,
     lambda m: m.nn.functional.max_unpool2d(m.zeros(1, 1, 4, 4),
                                            m.zeros(1, 1, 4, 1, dtype=m.int64), 3, 2)),
    # nn.functional: convolution
    ("conv1d_complex_bias", RuntimeError,
     lambda m: m.nn.functional.conv1d(m.zeros(1, 1, 4, dtype=m.float64),
                                      m.zeros(1, 1, 2, dtype=m.float64),
                                      m.zeros(1, dtype=m.complex128))),
    ("conv2d_complex_bias", RuntimeError,
     lambda m: m.nn.functional.conv2d(m.zeros(2, 4, 4, dtype=m.float64),
                                      m.zeros(3, 2, 3, 3, dtype=m.float64),
                                      m.zeros(3, dtype=m.complex128))),
    ("conv3d_complex_bias", RuntimeError,
     lambda m: m.nn.functional.conv3d(m.zeros(1, 1, 4, 4, 4, dtype=m.float64),
                                      m.zeros(1, 1, 2, 2, 2, dtype=m.float64),
                                      m.zeros(1, dtype=m.complex128))),
    ("conv2d_weight_dtype", RuntimeError,
     lambda m: m.nn.functional.conv2d(m.zeros(1, 1, 4, 4), m.zeros(1, 1, 2, 2, dtype=m.float64))),
    ("conv1d_dilation", RuntimeError,
     lambda m: m.nn.functional.conv1d(m.zeros(1, 1, 4), m.zeros(1, 1, 2), dilation=[-1])),
    ("conv1d_groups_0", RuntimeError,
     lambda m: m.nn.functional.conv1d(m.zeros(2, 2, 4), m.zeros(2, 2, 2), padding="same",
                                      groups=0)),
    ("conv2d_groups_0", RuntimeError,
     lambda m: m.nn.functional.conv2d(m.zeros(2, 2, 4, 3), m.zeros(2, 2, 4, 3), padding="same",
                                      groups=0)),
    ("conv3d_weight_4d", RuntimeError,
     lambda m: m.nn.functional.conv3d(m.zeros(1, 1, 3, 4, 5), m.zeros(1, 1, 4, 3),
                                      padding="same")),
    ("conv3d_same_strided", RuntimeError,
     lambda m: m.nn.functional.conv3d(m.zeros(1, 3, 9, 1, 9), m.zeros(3, 1, 3, 1, 3),
                                      stride=2, padding="same", groups=3)),
]  # fmt: skip


@pytest.mark.parametrize("kind, call", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_type_matches_torch(kind, call):
    with pytest.raises(kind):
        call(torch)
    with pytest.raises(kind):
        call(descent)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.narrow(m.zeros(5, 10), 1, 0, 11),
        lambda m: m.kthvalue(m.zeros(2, 2), 3),
    ],
)
def test_range_errors_stay_index_errors(call):
    """narrow / kthvalue raised IndexError before: a RuntimeError now (PyTorch's), still an
    IndexError for older code."""
    with pytest.raises(IndexError):
        call(descent)


def test_value_errors_stay_value_errors():
    """The ValueErrors that became PyTorch's RuntimeError are still ValueErrors."""
    with pytest.raises(ValueError):
        descent.trace(descent.zeros(3, 4, 5))
    with pytest.raises(ValueError):
        descent.nn.functional.max_pool2d(descent.ones(1, 1, 4, 4), 2, padding=2)


@pytest.mark.parametrize(
    "f",
    [
        # the paths next to the new checks keep working, with torch's values
        lambda m: m.narrow(m.arange(20.0).reshape(4, 5), 1, m.tensor(-2), 2),
        lambda m: m.narrow(m.arange(10.0), 0, -10, 10),
        lambda m: m.masked_fill(m.arange(4.0), m.arange(4) > 1, m.tensor(7.0)),
        lambda m: m.masked_fill(m.arange(4), m.arange(4) > 1, m.tensor(2.5)),
        lambda m: m.masked_fill(m.zeros(4, dtype=m.complex64), m.arange(4) > 1, 1j),
        lambda m: m.index_add(m.zeros(3, 2), 0, m.tensor([0, 2]), m.ones(2, 2)),
        lambda m: m.index_add(m.zeros(3), 0, m.tensor([1, 1]), m.tensor([5.0, 2.0])),
        lambda m: m.scatter_add(m.zeros(3), 0, m.tensor([2, 2]), m.ones(4)),
        lambda m: m.amax(m.arange(24.0).reshape(2, 3, 4), dim=[0, 2]),
        lambda m: m.mean(m.arange(6.0).reshape(2, 3), 1, dtype=m.float64),
        lambda m: m.linalg.cross(m.arange(6.0).reshape(2, 3), m.ones(2, 3)),
        lambda m: m.linspace(m.tensor(0.0), m.tensor(1.0), 5),
        lambda m: m.nn.functional.layer_norm(m.arange(6.0).reshape(2, 3), [3], m.ones(3),
                                             m.zeros(3)),
        lambda m: m.nn.functional.rms_norm(m.arange(6.0).reshape(2, 3), (3,), m.ones(3)),
        lambda m: m.nn.functional.max_pool1d(m.zeros(0, 1, 49), 2, 50, 1),
        lambda m: m.nn.functional.max_pool1d(m.arange(12.0).reshape(1, 2, 6), 3, 1, 1, 2),
        lambda m: m.nn.functional.adaptive_avg_pool2d(m.arange(16.0).reshape(1, 4, 4), (None, 2)),
        lambda m: m.nn.functional.adaptive_max_pool1d(m.arange(6.0).reshape(1, 6), 3),
        lambda m: m.nn.functional.conv2d(m.ones(1, 2, 4, 4), m.ones(2, 1, 3, 3), m.ones(2),
                                         padding=1, groups=2),
        lambda m: m.nn.functional.conv3d(m.ones(1, 1, 3, 3, 3, dtype=m.float64),
                                         m.ones(1, 1, 2, 2, 2, dtype=m.float64), dilation=1),
        lambda m: m.hsplit(m.arange(12.0).reshape(2, 6), [1, 4])[1],
        lambda m: m.multinomial(m.tensor([0.0, 1.0]), 1),
    ],
)  # fmt: skip
def test_valid_inputs_still_match_torch(f):
    got, want = f(descent), f(torch)
    assert tuple(got.shape) == tuple(want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name, shape, out",
    [
        ("adaptive_avg_pool3d", (1, 1, 2, 2, 2), [0, 1, 2]),
        ("adaptive_avg_pool2d", (2, 3, 2, 2), [0, 2]),
        ("adaptive_avg_pool2d", (3, 2, 2), [2, 0]),
        ("adaptive_max_pool2d", (1, 1, 2, 2), [0, 0]),
        ("adaptive_max_pool1d", (1, 1, 2), [0]),
        ("adaptive_max_pool3d", (2, 1, 2, 2, 2), [0, 1, 1]),
    ],
)
def test_adaptive_pool_zero_output_size(name, shape, out):
    """An output size of 0 gives PyTorch's empty result (descent refused it, or divided by
    zero); the input still gets a (zero) gradient. PyTorch's own backward raises here."""
    want = getattr(torch.nn.functional, name)(torch.ones(*shape), out)
    x = descent.ones(*shape, requires_grad=True)
    got = getattr(descent.nn.functional, name)(x, out)
    assert tuple(got.shape) == tuple(want.shape)
    got.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(shape, np.float32))
    if "max" in name:
        _, idx = getattr(descent.nn.functional, name)(x, out, return_indices=True)
        assert tuple(idx.shape) == tuple(want.shape) and idx.dtype == descent.int64
