"""pytest plugin: SciPy's own scipy/ndimage/tests/test_filters.py, run on cyconv.ndimage.

Load it with ``-p scipy_ndimage_plugin`` (this folder on sys.path) when running
``--pyargs scipy.ndimage.tests.test_filters``. The test file is SciPy's,
unmodified: it does ``from scipy import ndimage`` and calls ``ndimage.<name>``.
Before collection imports it, this plugin makes ``scipy.ndimage`` (the attribute
of the scipy package, which that import statement reads) a module whose
functions are cyconv's wherever cyconv.ndimage provides them and SciPy's
otherwise, so the parametrize lists built at import time hold cyconv's
functions too. After collection it keeps only the tests that call one of
cyconv's functions, minus the deliberate exclusions below (listed in the
README with the same reasons).
"""

from __future__ import annotations

import inspect
import re
import types

import pytest
import scipy
import scipy.ndimage
from scipy._lib._array_api import xp_capabilities_table

import cyconv.ndimage as cyconv_ndimage

PROVIDED = tuple(cyconv_ndimage.__all__)

# test id -> why it cannot pass on cyconv.ndimage.
EXCLUDED: dict[str, str] = {}


class NdimageWithCyconv(types.ModuleType):
    """scipy.ndimage with cyconv.ndimage's functions in place of SciPy's."""

    def __getattr__(self, name):
        return getattr(_original, name)


_original = scipy.ndimage
ndimage_with_cyconv = NdimageWithCyconv("scipy.ndimage", scipy.ndimage.__doc__)
for _name in PROVIDED:
    _ours = getattr(cyconv_ndimage, _name)
    setattr(ndimage_with_cyconv, _name, _ours)
    # SciPy's test decorators look up the array-API capabilities of the function
    # object they are given; cyconv's functions share SciPy's (NumPy only here).
    _theirs = getattr(scipy.ndimage, _name)
    if _theirs in xp_capabilities_table:
        xp_capabilities_table[_ours] = xp_capabilities_table[_theirs]

_call = re.compile(r"\bndimage\.(" + "|".join(PROVIDED) + r")\b")


def pytest_configure(config):
    scipy.ndimage = ndimage_with_cyconv


def pytest_unconfigure(config):
    scipy.ndimage = _original


def _uses_cyconv(item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = [v for v in params.values() if callable(v)]
    values += [x for v in params.values() if isinstance(v, (tuple, list)) for x in v
               if callable(x)]
    ours = [v for v in values if getattr(v, "__module__", "") == "cyconv.ndimage"]
    if ours:
        return True
    if any(getattr(v, "__module__", "").startswith("scipy.ndimage") for v in values):
        return False        # parametrized over a SciPy function cyconv does not provide
    return _calls_cyconv(item.function, item.cls, item.module)


def _calls_cyconv(function, cls, module, depth: int = 1) -> bool:
    """Does the test's source call ndimage.<provided>, itself or through one of
    the test file's helpers (e.g. self._validate_complex)?"""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if _call.search(source):
        return True
    if depth == 0:
        return False
    for name in set(re.findall(r"\b(\w+)\(", source)):
        helper = getattr(cls, name, None) or getattr(module, name, None)
        if inspect.isfunction(helper) and helper is not function \
                and getattr(helper, "__module__", None) == module.__name__ \
                and _calls_cyconv(helper, cls, module, depth - 1):
            return True
    return False


def pytest_collection_modifyitems(session, config, items):
    modules = {item.module for item in items if getattr(item, "module", None)}
    for module in modules:
        if getattr(module, "ndimage", None) is not ndimage_with_cyconv:
            raise pytest.UsageError(f"{module.__name__} does not use cyconv.ndimage: "
                                    "it must do `from scipy import ndimage`")
    keep, drop = [], []
    for item in items:
        if item.nodeid.split("::", 1)[-1] in EXCLUDED or not _uses_cyconv(item):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
