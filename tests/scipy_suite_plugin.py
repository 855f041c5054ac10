"""pytest plugin: point SciPy's own tests at cyconv's convolve2d/correlate2d.

Loaded with ``-p scipy_suite_plugin`` by tests/test_scipy_suite.py, which
runs SciPy's shipped test files (never copied here). After collection, the patch replaces
``scipy.signal.convolve2d``/``correlate2d`` (tests calling
``signal.convolve2d``) and the same names in every collected test module's
globals (tests that did ``from scipy.signal import convolve2d``).
"""

import scipy.signal

import cyconv

_PATCH = {"convolve2d": cyconv.convolve2d, "correlate2d": cyconv.correlate2d}


def pytest_collection_modifyitems(session, config, items):
    # After collection: SciPy's decorators look the original functions up
    # in a capabilities table while the test modules are imported.
    for name, func in _PATCH.items():
        setattr(scipy.signal, name, func)
    for module in {item.module for item in items if getattr(item, "module", None)}:
        for name, func in _PATCH.items():
            if name in vars(module):
                setattr(module, name, func)
