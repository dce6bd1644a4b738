"""procfs: the kernel's view of itself as files (proc(5)).

It sits above the kernel (it reads tasks, thread groups and address spaces)
and is wired in at boot (sentry/rootfs.py).  Files are generated when opened,
so a reader sees one consistent snapshot however small its reads are, as with
Linux's seq files.  Host facts (cpuinfo, meminfo) are read once at boot: the
Sentry opens no host file after start-up.
"""

from sentry.procfs.fs import ProcFilesystem

__all__ = ["ProcFilesystem"]
