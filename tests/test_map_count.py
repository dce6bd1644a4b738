"""vm.max_map_count (sentry/mm/vma_table.py): the LTP's munmap04 maps until
the limit and expects munmap's split to fail with ENOMEM; before, the host
refused the stub process its 65531st mapping and killed it."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native, run_sandbox


@pytest.mark.sandbox
def test_map_count_limit_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("map_count"), timeout=120, markers=(
        "mmap stops with Cannot allocate memory", "mapped > 65000: 1",
        "munmap splitting one: Cannot allocate memory", "munmap a whole one: ok"))


@pytest.mark.sandbox
def test_max_map_count_is_a_writable_tunable() -> None:
    # Sandbox only: natively this would change the host's tunable.
    res = run_sandbox(["/bin/sh", "-c",
                       "echo 1000 > /proc/sys/vm/max_map_count && cat /proc/sys/vm/max_map_count;"
                       " echo x > /proc/sys/vm/max_map_count || echo refused"])
    assert res.out.split() == ["1000", "refused"], res.describe()
