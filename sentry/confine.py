"""The Sentry's own seccomp filter, installed once start-up is over.

Facts this relies on (seccomp(2), libseccomp):

- By the time the filter goes on, everything the Sentry needs from the host is
  open: the memory file, the Gofer channel, stdio, the debug log; the zygote is
  forked (stubs are cloned from it, so they never inherit this filter).
- A filter applies to the calling thread and, with TSYNC, to every thread of
  the process; Python threads started later inherit it.
- recvmsg/sendmsg/close on sockets the Sentry already holds stay allowed:
  an OCI exec's stdio arrives later as SCM_RIGHTS on the host channel
  (sentry/oci/sentry_ops.py).
- Denied calls fail with EPERM rather than killing the process, so a Sentry
  path that still tries to open a file surfaces as a clear error, not a crash.
  This is a denylist: defense in depth behind the real wall (no application
  syscall ever reaches the host), as gVisor's Sentry filters itself.
- Modules must be imported before this point: an import opens files.
"""

from __future__ import annotations

import errno

DENIED = (
    # files, programs and sockets: the Gofer serves files, nothing else is needed
    "open", "openat", "openat2", "creat", "execve", "execveat",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # reaching into other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    # changing the host's view
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "mknod", "mknodat",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
    "symlink", "symlinkat", "link", "linkat", "chmod", "fchmodat", "chown", "fchownat",
    "truncate", "init_module", "finit_module", "delete_module", "kexec_load", "reboot",
    "swapon", "swapoff", "acct", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "io_uring_setup",
)


def _preimport() -> None:
    """Import what later code paths import lazily (an import opens files)."""
    import encodings.idna  # noqa: F401
    import encodings.latin_1  # noqa: F401
    import encodings.utf_8  # noqa: F401

    import syscalls.strace  # noqa: F401


# What --network=host needs the Sentry itself to call: it makes and drives
# the application's AF_INET/AF_INET6 sockets (sentry/net/hostinet.py).
HOST_NETWORK = ("socket", "connect", "bind", "listen", "accept", "accept4")


def prepare_filter(host_network: bool = False) -> object:
    """The filter, built but not loaded, and the imports made that later code
    needs.  sandbox.run calls this while the Gofer starts (it waits for the
    Gofer next), so the ~5-10 ms of pyseccomp and libseccomp work is off the
    path that `create` waits on; loading comes after the program is."""
    _preimport()
    from gofer.seccomp_loader import pyseccomp

    seccomp = pyseccomp()

    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        if host_network and name in HOST_NETWORK:
            continue
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (ValueError, OSError):
            continue  # a syscall this architecture does not have
    f.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    f.set_attr(seccomp.Attr.CTL_NNP, 1)
    return f


def confine_sentry(prepared: object | None = None) -> None:
    """Install the filter on every thread of the Sentry (TSYNC)."""
    f = prepared if prepared is not None else prepare_filter()
    f.load()  # type: ignore[attr-defined]
