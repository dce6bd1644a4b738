"""The sandbox's writable /proc/sys tunables: values read back, bad values
refused with EINVAL, root only, and the Sentry honouring the ones it applies
(nr_open caps RLIMIT_NOFILE, pipe-max-size caps F_SETPIPE_SZ, hostname and
domainname are the UTS names). Sandbox-only: writing the host's would
change the host."""

from __future__ import annotations

import sys

import pytest
from helpers import run_sandbox

SCRIPT = r"""
import errno, fcntl, os, resource, socket
def w(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def r(path):
    return open(path).read().strip()
S = "/proc/sys/"
print("pid_max", w(S + "kernel/pid_max", "5000"), r(S + "kernel/pid_max"))
print("pid_max junk", w(S + "kernel/pid_max", "abc"), "low", w(S + "kernel/pid_max", "12"))
print("nr_open", w(S + "fs/nr_open", "4096"), r(S + "fs/nr_open"))
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (5000, 5000))
    print("NOFILE 5000 ok")
except ValueError:  # Python's word for setrlimit's EPERM
    print("NOFILE 5000 EPERM")
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
print("NOFILE 4096 ok")
print("pipe-max-size", w(S + "fs/pipe-max-size", "65536"), r(S + "fs/pipe-max-size"))
print("hostname", w(S + "kernel/hostname", "boxed"), socket.gethostname(), os.uname().nodename)
print("domainname", w(S + "kernel/domainname", "example"), r(S + "kernel/domainname"))
print("drop_caches", w(S + "vm/drop_caches", "3"), "bad", w(S + "vm/drop_caches", "9"))
print("core_pattern", w(S + "kernel/core_pattern", "|/bin/false"), r(S + "kernel/core_pattern"))
print("tainted", r(S + "kernel/tainted"), "read-only", w(S + "kernel/tainted", "1"))
pid = os.fork()
if pid == 0:
    os.setgid(65534); os.setuid(65534)
    print("nobody writes", w(S + "kernel/pid_max", "6000"), flush=True)
    rfd, wfd = os.pipe()
    try:
        fcntl.fcntl(wfd, 1031, 131072)
        print("nobody pipe 128k ok", flush=True)
    except OSError as e:
        print("nobody pipe 128k", errno.errorcode[e.errno], flush=True)
    print("nobody pipe 64k", fcntl.fcntl(wfd, 1031, 65536), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""

EXPECTED = """\
pid_max ok 5000
pid_max junk EINVAL low EINVAL
nr_open ok 4096
NOFILE 5000 EPERM
NOFILE 4096 ok
pipe-max-size ok 65536
hostname ok boxed boxed
domainname ok example
drop_caches ok bad EINVAL
core_pattern ok |/bin/false
tainted 0 read-only EACCES
nobody writes EACCES
nobody pipe 128k EPERM
nobody pipe 64k 65536
"""


@pytest.mark.sandbox
def test_writable_tunables() -> None:
    res = run_sandbox([sys.executable, "-c", SCRIPT])
    assert res.returncode == 0, res.describe()
    assert res.out == EXPECTED, res.describe()
