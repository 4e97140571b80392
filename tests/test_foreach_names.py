"""descent's lazy index of torch._foreach_* names (descent/__init__.py) lists exactly the
functions descent/foreach.py defines, so none is unreachable as `descent._foreach_x`."""

import descent
from descent import foreach


def test_lazy_index_matches_the_module():
    assert sorted(descent._FOREACH_NAMES) == foreach.__all__
    for name in foreach.__all__:
        assert getattr(descent, name) is getattr(foreach, name)
