"""Wrapper templates of torch_keywords.numpy_aliases, one per parameter shape of its tables
(generated: `python -c 'import descent; descent.torch_keywords.write_alias_templates()'`
rewrites it; tests/test_numpy_aliases_s29.py checks it covers every shape). Only their code
objects are used, renamed per function, with that function's globals (`_M` there is the wrapper's
sentinel, `_slow`, `_fn`, ... its general path and target)."""

# ruff: noqa: F821, E501

_M = object()  # the templates' own defaults; each wrapper gets its function's


# fmt: off
def _w_1_2_2_0(p0=_M, *, k0=_M, k1=_M, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, k0, k1, e0, e1,), _d)
    return _fn(p0, k0=k0, k1=k1)


def _w_1_2_6_0(p0=_M, *, k0=_M, k1=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M, e5=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or e5 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, k0, k1, e0, e1, e2, e3, e4, e5,), _d)
    return _fn(p0, k0=k0, k1=k1)


def _w_1_3_4_0(p0=_M, *, k0=_M, k1=_M, k2=_M, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, k0, k1, k2, e0, e1, e2, e3,), _d)
    return _fn(p0, k0=k0, k1=k1, k2=k2)


def _w_2_0_1_0(p0=_M, p1=_M, *, e0=_M):
    if e0 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, e0,), _d)
    return _fn(p0, p1)


def _w_2_0_1_0_1(p0=_M, p1=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, e0,), _d)
    return _fn(p0, p1)


def _w_2_0_4_0(p0=_M, p1=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, e0, e1, e2, e3,), _d)
    return _fn(p0, p1)


def _w_2_0_4_0_1(p0=_M, p1=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, e0, e1, e2, e3,), _d)
    return _fn(p0, p1)


def _w_2_1_1_0_1(p0=_M, p1=_M, *, k0=_M, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, k0, e0,), _d)
    return _fn(p0, p1, k0=k0)


def _w_2_2_1_0(p0=_M, p1=_M, *, k0=_M, k1=_M, e0=_M):
    if e0 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, k0, k1, e0,), _d)
    return _fn(p0, p1, k0=k0, k1=k1)


def _w_2_2_5_0(p0=_M, p1=_M, *, k0=_M, k1=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, k0, k1, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, k0=k0, k1=k1)


def _w_3_0_1_0(p0=_M, p1=_M, p2=_M, *, e0=_M):
    if e0 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_1_0_1(p0=_M, p1=_M, p2=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_1_0_1_2(p0=_M, p1=_M, p2=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M or p2 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_2_0(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_2_0_1(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_4_0_1(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_4_0_1_2(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M or p2 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_5_0(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_5_0_1(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_6_0(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M, e5=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or e5 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3, e4, e5,), _d)
    return _fn(p0, p1, p2)


def _w_3_0_6_0_1(p0=_M, p1=_M, p2=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M, e5=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or e5 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, e0, e1, e2, e3, e4, e5,), _d)
    return _fn(p0, p1, p2)


def _w_3_1_1_0(p0=_M, p1=_M, p2=_M, *, k0=_M, e0=_M):
    if e0 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, e0,), _d)
    return _fn(p0, p1, p2, k0=k0)


def _w_3_1_1_0_1(p0=_M, p1=_M, p2=_M, *, k0=_M, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, e0,), _d)
    return _fn(p0, p1, p2, k0=k0)


def _w_3_1_2_0(p0=_M, p1=_M, p2=_M, *, k0=_M, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, e0, e1,), _d)
    return _fn(p0, p1, p2, k0=k0)


def _w_3_1_4_0(p0=_M, p1=_M, p2=_M, *, k0=_M, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, k0=k0)


def _w_3_1_5_0(p0=_M, p1=_M, p2=_M, *, k0=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, k0=k0)


def _w_3_2_5_0(p0=_M, p1=_M, p2=_M, *, k0=_M, k1=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, k1, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, k0=k0, k1=k1)


def _w_3_3_4_0(p0=_M, p1=_M, p2=_M, *, k0=_M, k1=_M, k2=_M, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, k0, k1, k2, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, k0=k0, k1=k1, k2=k2)


def _w_4_0_1_0_1(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_0_1_0_1_2_3(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_0_2_0_1(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0, e1,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_0_4_0_1_2_3(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_0_5_0_1_2_3(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_0_6_0_1(p0=_M, p1=_M, p2=_M, p3=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M, e5=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or e5 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, e0, e1, e2, e3, e4, e5,), _d)
    return _fn(p0, p1, p2, p3)


def _w_4_1_1_0_1_2_3(p0=_M, p1=_M, p2=_M, p3=_M, *, k0=_M, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, k0, e0,), _d)
    return _fn(p0, p1, p2, p3, k0=k0)


def _w_4_1_2_0_1(p0=_M, p1=_M, p2=_M, p3=_M, *, k0=_M, e0=_M, e1=_M):
    if e0 is not _M or e1 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, k0, e0, e1,), _d)
    return _fn(p0, p1, p2, p3, k0=k0)


def _w_4_1_6_0_1(p0=_M, p1=_M, p2=_M, p3=_M, *, k0=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M, e5=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or e5 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, k0, e0, e1, e2, e3, e4, e5,), _d)
    return _fn(p0, p1, p2, p3, k0=k0)


def _w_4_2_1_0_1_2(p0=_M, p1=_M, p2=_M, p3=_M, *, k0=_M, k1=_M, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M or p2 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, k0, k1, e0,), _d)
    return _fn(p0, p1, p2, p3, k0=k0, k1=k1)


def _w_4_2_5_0_1_2(p0=_M, p1=_M, p2=_M, p3=_M, *, k0=_M, k1=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M or p1 is _M or p2 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, k0, k1, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, p3, k0=k0, k1=k1)


def _w_5_0_1_0(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, e0=_M):
    if e0 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, e0,), _d)
    return _fn(p0, p1, p2, p3, p4)


def _w_5_0_1_0_1(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, e0,), _d)
    return _fn(p0, p1, p2, p3, p4)


def _w_5_0_4_0(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, p3, p4)


def _w_5_0_5_0(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, p3, p4)


def _w_5_0_5_0_1(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, p3, p4)


def _w_5_1_1_0_1_2_3_4(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, k0=_M, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M or p4 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, k0, e0,), _d)
    return _fn(p0, p1, p2, p3, p4, k0=k0)


def _w_5_1_4_0_1_2_3_4(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, k0=_M, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M or p4 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, k0, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, p3, p4, k0=k0)


def _w_5_1_5_0_1_2_3_4(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, *, k0=_M, e0=_M, e1=_M, e2=_M, e3=_M, e4=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or e4 is not _M or p0 is _M or p1 is _M or p2 is _M or p3 is _M or p4 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, k0, e0, e1, e2, e3, e4,), _d)
    return _fn(p0, p1, p2, p3, p4, k0=k0)


def _w_6_0_1_0_1(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, p5=_M, *, e0=_M):
    if e0 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, p5, e0,), _d)
    return _fn(p0, p1, p2, p3, p4, p5)


def _w_6_0_4_0_1(p0=_M, p1=_M, p2=_M, p3=_M, p4=_M, p5=_M, *, e0=_M, e1=_M, e2=_M, e3=_M):
    if e0 is not _M or e1 is not _M or e2 is not _M or e3 is not _M or p0 is _M or p1 is _M:
        return _slow(_fn, _al, _name, _names, (p0, p1, p2, p3, p4, p5, e0, e1, e2, e3,), _d)
    return _fn(p0, p1, p2, p3, p4, p5)

# fmt: on
