"""The time page: host clocks published for the vDSO, as gVisor's VDSO reads
its parameter page.

What the page holds (vvar.h): a seqlock word, an ``enabled`` flag, and for
each of CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW and
CLOCK_BOOTTIME a line through one point: ``ns = base_ns + ((tsc -
base_cycles) * mult) >> 32``.  The vDSO reads the TSC in the application and
evaluates it; nothing traps.

How it tracks the host (the semantics gVisor's timekeeper documents, our code):

- The Sentry samples each host clock between two TSC reads (the narrowest of a
  few tries, in C), and estimates the TSC frequency from the first sample ever
  taken to the latest: the baseline grows, so the estimate sharpens.
- Each update keeps every clock continuous (the new line starts where the old
  one is at that instant, read in C at publish time) and tilts it so that it
  meets the host clock one interval later: the error left by the last
  interval is paid back over the next, at most 0.1 % of the rate.  No reader
  sees a clock go back.  An error over 20 ms (a stepped host clock, e.g.
  settimeofday on CLOCK_REALTIME) resets the line to the host's value instead.
- Updates run 10 ms, 50 ms and 250 ms after boot, then every second, on one
  daemon thread.  Until the first, ``enabled`` is 0 and the vDSO takes the
  syscall, which is always right.
- The TSC must tick at a constant rate in step across CPUs: the kernel's own
  clocksource is ``tsc``, or the CPU flags constant_tsc and nonstop_tsc are
  set and the kernel still offers tsc as a clocksource.  Otherwise the page
  stays disabled for good (``PYVISOR_VDSO=syscall`` forces that, for tests).

The page is a memfd mapped twice in the Sentry: writable at an address the
zygote unmaps, read-only at STUB_VVAR_ADDR in the stub region, which every
stub inherits.  The descriptor is closed at once, so no stub can map it again
writable, and the stub filter refuses mprotect and mmap in the stub region.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

CLOCKS = (time.CLOCK_REALTIME, time.CLOCK_MONOTONIC, time.CLOCK_MONOTONIC_RAW,
          time.CLOCK_BOOTTIME)
_MONO = 1  # the index whose samples set the frequency
SCHEDULE_S = (0.01, 0.05, 0.25)
INTERVAL_S = 1.0
RESET_NS = 20_000_000
MAX_TILT = 1e-3
SAMPLE_TRIES = 5


def tsc_usable(root: str = "/") -> bool:
    """Whether the host's TSC ticks at one rate in step on every CPU."""
    src = os.path.join(root, "sys/devices/system/clocksource/clocksource0")
    try:
        with open(os.path.join(src, "current_clocksource")) as f:
            current = f.read().strip()
        with open(os.path.join(src, "available_clocksource")) as f:
            available = f.read().split()
    except OSError:
        return False
    if current == "tsc":
        return True
    try:
        with open(os.path.join(root, "proc/cpuinfo")) as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return False
    return "constant_tsc" in flags and "nonstop_tsc" in flags and "tsc" in available


class TimePage:
    """The Sentry's writable view of the page and the thread that keeps it."""

    def __init__(self, ffi, lib, addr: int, usable: bool) -> None:  # noqa: ANN001 - cffi
        self._ffi = ffi
        self._lib = lib
        self.page = ffi.cast("struct vvar *", addr)
        self.usable = usable
        self._out = ffi.new("uint64_t[3]")
        self._mult = ffi.new("uint64_t[]", len(CLOCKS))
        self._reset_ns = ffi.new("int64_t[]", len(CLOCKS))
        self._reset_tsc = ffi.new("uint64_t[]", len(CLOCKS))
        self._first: tuple[int, int] | None = None  # (tsc, MONOTONIC ns) of the first sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, clk: int) -> tuple[int, int]:
        self._lib.vvar_sample(clk, SAMPLE_TRIES, self._out)
        return int(self._out[0]), int(self._out[1])

    def set_slow_mono(self) -> None:
        """From now on the vDSO reads only CLOCK_REALTIME itself (a time
        namespace with offsets exists: sentry/kernel/timens.py)."""
        self.page.slow_mono = 1

    def calibrate_start(self) -> None:
        """The first sample: the start of the frequency baseline."""
        if self.usable:
            self._first = self._sample(time.CLOCK_MONOTONIC)

    def update(self, horizon_s: float) -> bool:
        """Publish new lines that meet the host clocks ``horizon_s`` from now;
        False when there is no baseline yet to measure the frequency on."""
        if not self.usable or self._first is None:
            return False
        samples = [self._sample(c) for c in CLOCKS]
        t0, n0 = self._first
        t1, n1 = samples[_MONO]
        if t1 <= t0 or n1 <= n0:
            return False
        ns_per_cycle = (n1 - n0) / (t1 - t0)
        enabled = bool(self.page.enabled)
        horizon_ns = horizon_s * 1e9
        for i, (tsc, ns) in enumerate(samples):
            rate = ns_per_cycle
            reset = not enabled
            if not reset:
                err = ns - self._value(i, tsc)
                if abs(err) > RESET_NS:
                    reset = True
                else:
                    rate *= 1 + max(-MAX_TILT, min(MAX_TILT, err / horizon_ns))
            self._mult[i] = round(rate * (1 << self._lib.VVAR_SHIFT))
            self._reset_tsc[i] = tsc if reset else 0
            self._reset_ns[i] = ns if reset else 0
        self._lib.vvar_publish(self.page, self._mult, self._reset_ns, self._reset_tsc, 1)
        return True

    def _value(self, i: int, tsc: int) -> int:
        """Clock i as the page gives it at ``tsc`` (vvar_eval, in Python)."""
        c = self.page.clk[i]
        d = max(0, tsc - c.base_cycles)
        return c.base_ns + ((d * c.mult) >> self._lib.VVAR_SHIFT)

    def start(self) -> None:
        """Start the daemon thread that keeps the page (no-op when disabled)."""
        if not self.usable or self._thread is not None:
            return
        self.calibrate_start()
        self._thread = threading.Thread(target=self._run, name="vdso-timekeeper", daemon=True)
        self._thread.start()
        # Joined before the interpreter tears down: a daemon thread waking in
        # finalization calls pthread_exit, which loads libgcc_s, and the
        # confined Sentry may not open it (glibc then aborts the process).
        atexit.register(self.stop)

    def _run(self) -> None:
        waits = list(SCHEDULE_S)
        while True:
            wait = waits.pop(0) if waits else INTERVAL_S
            if self._stop.wait(wait):
                return
            try:
                self.update(waits[0] if waits else INTERVAL_S)
            except Exception:  # noqa: BLE001 - never kill the Sentry over the clock
                log.exception("vdso: time page update failed; the page stays as it was")

    def stop(self) -> None:
        """End the thread and wait for it (the page stays as it was)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
