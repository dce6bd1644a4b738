"""A thread's scheduling parameters, as the application set them.

The Sentry cannot give a stub real-time priority or a nicer slot than its own
without handing it host power, so these are recorded and reported back
(syscalls/sched.py holds the calls and Linux's rules for changing them); fork
copies them, resetting a real-time policy or negative nice when the parent
set SCHED_RESET_ON_FORK, as Linux does.
"""

from __future__ import annotations

from shm.records import record, replace

SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_DEADLINE = 0, 1, 2, 6
RT_POLICIES = (SCHED_FIFO, SCHED_RR)
DEFAULT_SLACK_NS = 50_000  # Linux's init_task.timer_slack_ns


@record(frozen=True, slots=True)
class SchedState:
    """One thread's scheduling parameters."""

    policy: int = SCHED_OTHER
    priority: int = 0  # real-time priority, 1..99 under FIFO and RR
    nice: int = 0
    reset_on_fork: bool = False
    ioprio: int = 0
    dl: tuple[int, int, int] = (0, 0, 0)  # SCHED_DEADLINE runtime, deadline, period (ns)
    # prctl(PR_SET_TIMERSLACK): the thread's timer slack, and what setting 0
    # restores (the creating thread's slack at clone time, as on Linux).
    timer_slack_ns: int = DEFAULT_SLACK_NS
    default_slack_ns: int = DEFAULT_SLACK_NS

    def forked(self) -> SchedState:
        """What a child thread starts with."""
        slack = self.timer_slack_ns
        if not self.reset_on_fork:
            return replace(self, default_slack_ns=slack)  # type: ignore[return-value]
        policy = SCHED_OTHER if self.policy in (*RT_POLICIES, SCHED_DEADLINE) else self.policy
        return SchedState(policy=policy, nice=max(self.nice, 0), ioprio=self.ioprio,
                          timer_slack_ns=slack, default_slack_ns=slack)


DEFAULT = SchedState()


def with_slack(s: SchedState, ns: int) -> SchedState:
    """``s`` with timer slack ``ns`` (0: the thread's default)."""
    return replace(s, timer_slack_ns=ns or s.default_slack_ns)  # type: ignore[return-value]
