"""Time checks that hold on a loaded machine: CPU time of this process (other processes' load does not
count, unlike wall-clock time), compared with a reference measured in the same test, never with seconds."""

from __future__ import annotations

import hashlib
import time


def cpu_seconds(call, *args, repeat: int = 3, expected: type[BaseException] | tuple = ()) -> float:
    """The least CPU time of ``repeat`` calls (the least is the one a scheduler hiccup did not inflate);
    an ``expected`` exception is the call's normal outcome."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        try:
            call(*args)
        except expected:
            pass
        best = min(best, time.process_time() - started)
    return best


def assert_linear(call, small, big: bytes, growth: float, *, expected: type[BaseException] | tuple = (),
                  what: str = "") -> None:
    """``call(big)`` costs at most 3x the linear share of ``call(small)``, ``growth`` times smaller (a quadratic
    cost, ``growth`` squared, fails for any growth of 4 or more), or at most 100 SHA-256 passes over ``big``:
    the second reference covers work that stops growing (a cap reached) and calls that take microseconds."""
    small_s = cpu_seconds(call, small, expected=expected)
    big_s = cpu_seconds(call, big, expected=expected)
    scan_s = cpu_seconds(lambda data: hashlib.sha256(data).digest(), big, repeat=5)
    assert big_s <= 3 * growth * small_s or big_s <= 100 * scan_s, (
        f"{what}: {big_s * 1000:.1f} ms CPU for {growth:g}x the input of {small_s * 1000:.2f} ms, "
        f"{big_s / scan_s:.0f} SHA-256 passes over it (more than linear)")
