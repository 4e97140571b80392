"""PyTorch's storage API against torch 2.13 (descent/storage.py, docs/torch_gaps_tensor.md):
x.untyped_storage() / x.storage(), the storage classes, Tensor.set_, and the shared-memory
idioms libraries use (safetensors' and Hugging Face's tied-weight checks by data_ptr/nbytes)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import descent as ds


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool", "float16"])
def test_untyped_storage_describes_the_memory_as_torch(dtype):
    def make(lib):
        return lib.arange(12).to(getattr(lib, dtype)).reshape(3, 4)

    d, t = make(ds), make(torch)
    for view in (lambda x: x, lambda x: x[1:, 2:], lambda x: x.t(), lambda x: x.reshape(-1)[3:7]):
        sd, st = view(d).untyped_storage(), view(t).untyped_storage()
        assert (sd.nbytes(), sd.size(), len(sd), sd.element_size()) == \
            (st.nbytes(), st.size(), len(st), st.element_size())  # fmt: skip
        assert sd.tolist() == st.tolist()
        assert sd.data_ptr() == d.data_ptr()  # the whole memory, from its start
        assert view(d).storage_offset() == view(t).storage_offset()
    assert repr(ds.arange(3, dtype=ds.uint8).untyped_storage()) == repr(
        torch.arange(3, dtype=torch.uint8).untyped_storage()
    )


def test_one_storage_object_per_memory_and_tied_weight_checks():
    emb = ds.nn.Embedding(10, 4)
    head = ds.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight  # tied, as in GPT-2
    other = ds.nn.Linear(4, 10, bias=False)
    s = emb.weight.untyped_storage()
    assert s is head.weight.untyped_storage() is emb.weight[2:].untyped_storage()  # as torch
    # Hugging Face's id_tensor_storage / safetensors' storage_ptr idioms
    key = (s.data_ptr(), s.nbytes())
    assert key == (head.weight.untyped_storage().data_ptr(), head.weight.untyped_storage().nbytes())
    assert other.weight.untyped_storage().data_ptr() != s.data_ptr()
    assert emb.weight.clone().untyped_storage().data_ptr() != s.data_ptr()
    t = ds.from_numpy(np.zeros(5, np.float32))
    assert t.untyped_storage().nbytes() == 20


def test_writes_through_the_storage_reach_the_tensor():
    for lib in (ds, torch):
        x = lib.zeros(4)
        s = x.untyped_storage()
        s.fill_(7)
        s[4:8] = 0
        assert x.untyped_storage()[5] == 0 and x.untyped_storage()[3] == 7
        with pytest.raises(RuntimeError, match="can only set storage content with a int"):
            s[0:4] = [1, 2, 3, 4]
        y = lib.ones(4)
        x[2:].untyped_storage().copy_(y.untyped_storage())
        assert x.tolist() == [1.0] * 4
    x = ds.arange(3.0)
    s = x.untyped_storage()
    s[0] = 0x3F  # the high byte of 1.0 (little-endian) lands in the tensor
    assert s[0] == 0x3F and x.tolist()[0] != 0.0


def _set_cases(lib):
    x = lib.arange(6.0)
    s = x.untyped_storage()
    out = [lib.empty(0).set_(s, 2, (2, 2), (1, 2)),
           lib.empty(0).set_(s),
           lib.empty(0, dtype=lib.int32).set_(s),  # the bytes read as int32
           lib.empty(0).set_(x),
           lib.empty(3).set_(),
           lib.empty(0, dtype=lib.float64).set_(lib.arange(4.0, dtype=lib.float64).storage(), 1,
                                                (3,)),
           lib.empty(0).set_(x, 1, (2,), (2,)),
           lib.empty(0).set_(s, 1, (2, 2))]  # fmt: skip
    shared = lib.empty(0).set_(s, 3, (2,))
    shared.add_(100)
    out.append(x)  # x saw the write through the other tensor
    return out


def test_set_matches_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in zip(_set_cases(ds), _set_cases(torch), strict=True):
            assert tuple(a.shape) == tuple(b.shape) and a.stride() == b.stride()
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = ds.arange(6.0)
    y = ds.empty(0).set_(x)
    assert y.data_ptr() == x.data_ptr() and y.is_set_to(x)


def test_set_errors_match_torch():
    for lib in (ds, torch):
        q = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            q.set_(lib.ones(3))
        with lib.no_grad():  # FSDP-style: allowed, the leaf keeps requires_grad
            q.set_(lib.ones(3))
        assert q.requires_grad and q.is_leaf and q.tolist() == [1.0, 1.0, 1.0]
        with pytest.raises(TypeError):
            lib.empty(0).set_(lib.zeros(2).untyped_storage(), 1)  # an offset needs a size
    # past the end of a tensor's memory: the storage grows (PyTorch's new values are
    # uninitialised, descent's 0; tests/test_gaps_s12.py compares the kept ones)
    for lib in (ds, torch):
        z = lib.zeros(2)
        assert tuple(lib.empty(0).set_(z.untyped_storage(), 1, (2,)).shape) == (2,)
        assert z.untyped_storage().nbytes() == 12
    # a storage of its own grows, with zeros
    s = ds.UntypedStorage(4)
    assert ds.empty(0).set_(s, 1, (2,)).tolist() == [0.0, 0.0] and s.nbytes() == 12


def test_typed_storage_and_legacy_classes():
    x = ds.arange(4.0)
    ds.storage._warned = False  # PyTorch warns once per process, descent too
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        ts = x.storage()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.storage()  # not twice
    for a, b in ((x.storage(), torch.arange(4.0).storage()),
                 (ds.FloatStorage([1, 2]), torch.FloatStorage([1, 2]))):  # fmt: skip
        assert (a.size(), len(a), a.nbytes(), a.element_size(), a.type()) == \
            (b.size(), len(b), b.nbytes(), b.element_size(), b.type())  # fmt: skip
        assert a.tolist() == b.tolist() and a[1] == b[1] and str(a.dtype)[-7:] == str(b.dtype)[-7:]
        assert repr(a) == repr(b)
    assert isinstance(x.storage(), ds.TypedStorage) and isinstance(x.storage(), ds.FloatStorage)
    assert not isinstance(x.storage(), ds.DoubleStorage)
    assert ds.TypedStorage(3, dtype=ds.float64).size() == 3
    assert ds.LongStorage(2).tolist() == [0, 0]
    assert ts.untyped().nbytes() == ts.nbytes()
    assert x.storage_type() is ds.FloatStorage and ds.arange(2).storage_type() is ds.LongStorage
    assert torch.arange(2).storage_type() is torch.LongStorage
    for lib in (ds, torch):
        assert lib.is_storage(lib.zeros(2).untyped_storage())
        assert lib.is_storage(lib.ones(1).storage())
        assert not lib.is_storage(lib.zeros(2))


def test_standalone_storages_construct_copy_and_resize():
    for lib in (ds, torch):
        assert lib.UntypedStorage(4).nbytes() == 4
        assert lib.UntypedStorage([1, 2, 3]).tolist() == [1, 2, 3]
        assert lib.UntypedStorage.from_buffer(b"\x00\x00\x80\x3f", dtype=lib.uint8).tolist() \
            == [0, 0, 128, 63]  # fmt: skip
        assert lib.UntypedStorage(3).resize_(5).nbytes() == 5
        s = lib.UntypedStorage([1, 2])
        c, d = s.clone(), copy.deepcopy(s)
        s[0] = 9
        assert c.tolist() == d.tolist() == [1, 2] and s.tolist() == [9, 2]
        assert lib.empty(0).set_(lib.UntypedStorage([0, 0, 128, 63])).tolist() == [1.0]


def test_what_descent_refuses_and_why():
    with pytest.raises(NotImplementedError, match="meta"):
        ds.empty(3, device="meta").untyped_storage()


def test_empty_tensor_strides_match_torch():
    # NumPy 2 gives empty arrays all-zero strides; PyTorch the contiguous layout (set_() above
    # compares them): (2, 0) -> (1, 1), (0, 3) -> (3, 1); as_strided keeps what it is given
    for shape in [(0,), (2, 0), (0, 3), (2, 0, 3), (1, 0)]:
        assert ds.empty(*shape).stride() == torch.empty(*shape).stride()
        assert ds.zeros(shape).reshape(shape).stride() == torch.zeros(shape).reshape(shape).stride()
    assert ds.zeros(4).as_strided((0, 2), (1, 1)).stride() == (1, 1)
