"""A NumPy-backed stand-in for the parts of CuPy that descent.kernels.cuda uses.

`RawModule` compiles the row kernels' CUDA C++ with g++ (prelude.h emulates the CUDA built-ins)
and `ElementwiseKernel` turns an elementwise operation into a C++ loop, so the kernels' own
source runs on the CPU. Arguments are checked the way CuPy needs them (C-contiguous arrays of
the declared type, NumPy scalars of the exact declared type).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(tempfile.gettempdir(), "descent_cuda_emulator")
_SCALAR = {"float": (ctypes.c_float, np.float32), "int": (ctypes.c_int, np.int32),
           "long long": (ctypes.c_longlong, np.int64)}  # fmt: skip
_POINTER = {"float*": np.float32, "half16*": np.float16, "longlong*": np.int64}


def _compile(src: str, tag: str):
    os.makedirs(BUILD, exist_ok=True)
    digest = hashlib.sha1(src.encode()).hexdigest()[:12]
    so = os.path.join(BUILD, f"{tag}_{digest}.so")
    if not os.path.exists(so):
        cpp = so[:-3] + ".cpp"
        with open(cpp, "w") as f:
            f.write(src)
        subprocess.run(["g++", "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", "-Wall",
                        "-Wno-unused-variable", "-I", HERE, cpp, "-o", so], check=True)  # fmt: skip
    return ctypes.CDLL(so)


class RawModule:
    def __init__(self, code: str, name_expressions=(), options=()):
        code = '#define DESCENT_HOST_EMULATION\n#include "prelude.h"\n' + code
        sigs = dict(re.findall(r"template <typename T>\s*__global__ void (\w+)\(([^)]*)\)", code))
        wrappers, self.types = [], {}
        for ne in name_expressions:
            name, ct = re.match(r"(\w+)<(\w+)>", ne).groups()
            params = [re.sub(r"\bT\b", ct, q.strip()) for q in sigs[name].split(",")]
            names = [q.split()[-1].lstrip("*") for q in params]
            self.types[ne] = [q.rsplit(None, 1)[0] + ("*" if "*" in q.split()[-1] else "")
                              for q in params]  # fmt: skip
            wrappers.append(
                f'extern "C" void {name}__{ct}(unsigned emu_gx, unsigned emu_gy, '
                f"unsigned emu_bx, {', '.join(params)}) {{ launch(emu_gx, emu_gy, emu_bx, "
                f"[&] {{ {name}<{ct}>({', '.join(names)}); }}); }}"
            )
        self.lib = _compile(code + "\n" + "\n".join(wrappers), "raw")

    def get_function(self, ne: str):
        name, ct = re.match(r"(\w+)<(\w+)>", ne).groups()
        fn, types_ = getattr(self.lib, f"{name}__{ct}"), self.types[ne]

        def launch(grid, block, args):
            grid = tuple(grid) + (1,) * (2 - len(grid))
            assert len(args) == len(types_), (ne, len(args), types_)
            cargs = [ctypes.c_uint(grid[0]), ctypes.c_uint(grid[1]), ctypes.c_uint(block[0])]
            for a, t in zip(args, types_, strict=True):
                base = t.replace("const ", "").strip()
                if base.endswith("*"):
                    want = _POINTER[base.replace(" ", "")]
                    assert isinstance(a, np.ndarray) and a.flags.c_contiguous, (ne, t)
                    assert a.dtype == want, (ne, t, a.dtype)
                    cargs.append(ctypes.c_void_p(a.ctypes.data))
                else:
                    ctype, exact = _SCALAR[base]
                    assert type(a) is exact, (ne, t, type(a))  # CuPy needs exact scalar types
                    cargs.append(ctype(a.item()))
            fn(*cargs)

        return launch


class ElementwiseKernel:
    def __init__(self, in_params: str, out_params: str, operation: str, name: str):
        self.ins = [q.strip().split() for q in in_params.split(",")]
        self.outs = [q.strip().split() for q in out_params.split(",")]
        self.op, self.name, self.libs = operation, name, {}

    def _lib(self, ct: str):
        if ct not in self.libs:
            params, body = [], []
            for ty, nm in self.ins + self.outs:
                if ty == "T":
                    params.append(f"T* {nm}_p")
                    body.append(f"T& {nm} = {nm}_p[i];")
                else:
                    params.append(f"float {nm}")
            concrete = [q.replace("T*", ct + "*") for q in params]
            src = ('#include "prelude.h"\ntemplate <typename T> void k(long long n, '
                   + ", ".join(params) + ") { for (long long i = 0; i < n; ++i) { "
                   + " ".join(body) + " " + self.op + " } }\n"
                   + 'extern "C" void run(long long n, ' + ", ".join(concrete) + ") { k<"
                   + ct + ">(n, " + ", ".join(q.split()[-1] for q in params) + "); }")  # fmt: skip
            self.libs[ct] = _compile(src, self.name)
        return self.libs[ct]

    def __call__(self, *args):
        n_in = len(self.ins)
        arrays = [a for a, (ty, _) in zip(args, self.ins, strict=False) if ty == "T"]
        dt = arrays[0].dtype
        ct = {np.dtype(np.float32): "float", np.dtype(np.float16): "_Float16"}[dt]
        outs = list(args[n_in:]) or [np.empty_like(arrays[0]) for _ in self.outs]
        allargs = list(args[:n_in]) + outs
        shape = arrays[0].shape
        cargs = []
        for a, (ty, _) in zip(allargs, self.ins + self.outs, strict=True):
            if ty == "T":
                assert a.dtype == dt and a.flags.c_contiguous and a.shape == shape, self.name
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:
                assert type(a) is np.float32, (self.name, type(a))
                cargs.append(ctypes.c_float(float(a)))
        self._lib(ct).run(ctypes.c_longlong(int(np.prod(shape))), *cargs)
        return outs[0] if len(outs) == 1 else tuple(outs)


def make():
    """A module that looks like `cupy` to descent.kernels.cuda (arrays are NumPy's)."""
    m = types.ModuleType("fakecupy")
    for k in dir(np):
        if not k.startswith("__"):
            setattr(m, k, getattr(np, k))
    m.RawModule, m.ElementwiseKernel = RawModule, ElementwiseKernel
    m.cuda = types.SimpleNamespace(Device=lambda *a: types.SimpleNamespace(synchronize=lambda: 0))
    return m
