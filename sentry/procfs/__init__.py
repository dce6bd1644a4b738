"""procfs: the kernel's view of itself as files (proc(5)).

It sits above the kernel (it reads tasks, thread groups and address spaces)
and is wired in at boot (sentry/rootfs.py)::

    ns.mount(ProcFilesystem(kernel), resolve(ctx, b"/proc"), "proc")
    # or: mount_procfs(ns, resolve(ctx, b"/proc"), kernel)

Modules: ``nodes`` (generated files, computed links, directories),
``hostinfo`` (host cpuinfo/meminfo, read once: the Sentry opens no host file
after start-up), ``system`` (system-wide files and /proc/sys), ``process``
(the text of /proc/<pid> files), ``piddir`` (the per-process directories),
``fs`` (the filesystem, the root directory, /proc/self).
"""

from sentry.procfs.fs import ProcFilesystem, mount_procfs

__all__ = ["ProcFilesystem", "mount_procfs"]
