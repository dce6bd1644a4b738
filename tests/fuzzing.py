"""Two budgets for the property-based fuzzers (tests/test_fuzz_*.py).

Every fuzz property runs twice over: once in the default run with a small,
fixed number of examples (all the fuzzers together stay well under a minute
on this project's 2-core machines), and once as a ``slow``-marked twin with
many more (``python3 -m pytest -m slow tests/test_fuzz_*.py``).  Neither has a
per-example deadline: a slow example on a loaded machine is not a failure, a
hang is (pytest's faulthandler_timeout dumps it).

``PYVISOR_FUZZ_EXAMPLES=N`` overrides the long budget, for a soak run.

Usage::

    @fuzz(blob=st.binary())
    @example(blob=b"...")            # a seed a fuzzer once found: kept for good
    def test_decoder(blob: bytes) -> None: ...

    test_decoder_long = test_decoder.long
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

QUICK_EXAMPLES = 120
LONG_EXAMPLES = int(os.environ.get("PYVISOR_FUZZ_EXAMPLES") or 5000)
_HEALTH = list(HealthCheck)


def _profile(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=_HEALTH,
                    print_blob=True)


def fuzz(quick: int = QUICK_EXAMPLES, **strategies: SearchStrategy[Any]) -> Callable[..., Any]:
    """Make ``prop`` a quick fuzz test, with ``.long`` its slow twin.  @example
    decorators applied below ``@fuzz`` hold for both."""

    def deco(prop: Callable[..., None]) -> Any:
        examples = getattr(prop, "hypothesis_explicit_examples", [])

        def make(n: int, suffix: str) -> Any:
            def test(**kw: Any) -> None:
                prop(**kw)
            test.__name__ = prop.__name__ + suffix
            test.__qualname__ = test.__name__
            test.__doc__ = prop.__doc__
            test.__module__ = prop.__module__
            test.hypothesis_explicit_examples = list(examples)  # type: ignore[attr-defined]
            return _profile(n)(given(**strategies)(test))

        quick_test = make(quick, "")
        quick_test.long = pytest.mark.slow(make(LONG_EXAMPLES, "_long"))
        return quick_test

    return deco
