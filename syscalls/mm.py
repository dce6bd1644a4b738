"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise, msync.

The address space (sentry/mm) does the bookkeeping and queues the stub-side
map operations; the task loop applies them before the application resumes.
"""

from __future__ import annotations

import errno
import mmap as _mmap
from typing import TYPE_CHECKING, Any

from sentry.kernel import rlimits
from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import FileBacking, writeback_for
from sentry.mm.layout import APP_END, APP_START, PAGE_SIZE, page_round_up
from sentry.mm.vma import MAP_LOCKED, MAP_POPULATE, VM_FILECOPY, VM_NOMAYWRITE
from sentry.vfs import vfs
from sentry.vfs.description import PathDescription, dentry_of
from sentry.vfs.tmpfs import NO_WRITES, memfd_file
from syscalls.abi import read_iovecs, s32
from syscalls.mlock import lock_limit
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

PROT_MASK = _mmap.PROT_READ | _mmap.PROT_WRITE | _mmap.PROT_EXEC
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_GROWSDOWN = 0x100
MAP_FIXED_NOREPLACE = 0x100000
MAX_LENGTH = APP_END - APP_START


def brk(t: Task, a: Args) -> int:
    """brk(2): the raw syscall returns the (possibly unchanged) break; a heap
    that RLIMIT_DATA or RLIMIT_AS would not allow leaves it unchanged."""
    mm = t.mm
    grow = page_round_up(a[0]) - page_round_up(mm.current_brk)
    if a[0] > mm.current_brk and grow > 0:
        data = rlimits.get(t.tg, rlimits.RLIMIT_DATA)[0]
        if data != rlimits.RLIM_INFINITY and a[0] - mm.brk_start > data:
            return mm.current_brk
        try:
            _may_expand(t, grow, 0)
        except SyscallError:
            return mm.current_brk
    return mm.brk(a[0])


def _may_expand(t: Task, grow: int, data_grow: int) -> None:
    """may_expand_vm(): ENOMEM when ``grow`` more mapped bytes pass RLIMIT_AS,
    or ``data_grow`` more private writable bytes pass RLIMIT_DATA (a zero soft
    data limit lets mappings up to the hard one through, as Linux does)."""
    limit = rlimits.get(t.tg, rlimits.RLIMIT_AS)[0]
    if grow > 0 and limit != rlimits.RLIM_INFINITY and t.mm.total_bytes() + grow > limit:
        raise SyscallError(errno.ENOMEM)
    soft, hard = rlimits.get(t.tg, rlimits.RLIMIT_DATA)
    if data_grow > 0 and soft != rlimits.RLIM_INFINITY:
        used = t.mm.data_bytes() + data_grow
        if used > soft and not (soft == 0 and used <= hard):
            raise SyscallError(errno.ENOMEM)


def _charge_mmap(t: Task, addr: int, length: int, prot: int, flags: int) -> None:
    """The limits a new mapping must fit: RLIMIT_AS and RLIMIT_DATA for what it
    adds (a MAP_FIXED one replaces what it covers), and RLIMIT_MEMLOCK
    (EAGAIN) after mlockall(MCL_FUTURE)."""
    if length <= 0 or length > MAX_LENGTH:
        return  # mmap's own checks answer
    length = page_round_up(length)
    replaced = 0
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) and not addr % PAGE_SIZE:
        replaced = t.mm.bytes_in(addr, addr + length)
    data = (prot & _mmap.PROT_WRITE and flags & MAP_TYPE == _mmap.MAP_PRIVATE
            and not flags & MAP_GROWSDOWN)
    _may_expand(t, length - replaced, length - replaced if data else 0)
    if t.mm.lock_future or flags & MAP_LOCKED:
        limit = lock_limit(t)
        if limit is not None and t.mm.locked_bytes() + length > limit:
            raise SyscallError(errno.EAGAIN)


def _lock_new(t: Task, addr: int, length: int, flags: int = 0) -> int:
    """After mlockall(MCL_FUTURE), or with MAP_LOCKED, a new mapping starts
    locked; locked or MAP_POPULATE, its pages are made present now (what
    mincore then reports)."""
    end = addr + page_round_up(length)
    if t.mm.lock_future or flags & MAP_LOCKED:
        t.mm.set_locked(addr, end, True)
    if t.mm.lock_future or flags & (MAP_LOCKED | MAP_POPULATE):
        t.mm.populate(addr, end)
    return addr


def mmap(t: Task, a: Args) -> int:
    """mmap(2): anonymous mappings; file mappings arrive with the VFS."""
    addr, length, prot, flags, fd, off = a
    if prot & ~PROT_MASK:
        raise SyscallError(errno.EINVAL)
    if off & 0xFFF:
        raise SyscallError(errno.EINVAL)
    _charge_mmap(t, addr, length, prot, flags & 0xFFFFFFFF)
    flags &= 0xFFFFFFFF
    if not flags & _mmap.MAP_ANONYMOUS:
        return _lock_new(t, _mmap_file(t, addr, length, prot, flags, s32(fd), off),
                         length, flags)
    return _lock_new(t, t.mm.mmap(addr, length, prot, flags), length, flags)


def _mmap_file(t: Task, addr: int, length: int, prot: int, flags: int, fd: int,
               off: int) -> int:
    """A file mapping.  MAP_SHARED of a regular file maps the file's own pages
    (sentry/mm/filemap.py): a Sentry-held file's storage, or a write-back cache
    of a Gofer file; MAP_SHARED of a device (/dev/zero) is shared anonymous
    memory, as Linux's shmem_zero_setup.  MAP_PRIVATE is a copy of the file's
    bytes at mmap time (Linux's copy-on-write copies later: a store by another
    process before our first store to the page is not seen: partial)."""
    desc = t.fds.get(fd)
    if isinstance(desc, PathDescription):  # O_PATH: Linux's fdget refuses it
        raise SyscallError(errno.EBADF)
    # do_mmap()'s order: a zero length, then the mapping type, then the
    # file's access mode, and only then whether it can be mapped at all.
    if length == 0 or flags & MAP_TYPE not in (_mmap.MAP_SHARED, _mmap.MAP_PRIVATE,
                                               MAP_SHARED_VALIDATE):
        raise SyscallError(errno.EINVAL)
    shared = flags & MAP_TYPE in (_mmap.MAP_SHARED, MAP_SHARED_VALIDATE)
    if shared and prot & _mmap.PROT_WRITE and not desc.writable():
        raise SyscallError(errno.EACCES)
    if not desc.readable():
        raise SyscallError(errno.EACCES)
    read_pages = getattr(desc, "read_pages", None)
    if read_pages is None:
        raise SyscallError(errno.ENODEV)
    d = dentry_of(desc)
    name = vfs.fd_path(t.tg.fs, desc).decode(errors="replace") if d is not None else ""
    inode = getattr(desc, "inode", None)
    if shared and inode is not None:
        if not inode.is_reg():  # a device: /dev/zero
            return t.mm.mmap(addr, length, prot, flags | _mmap.MAP_ANONYMOUS, name=name,
                             vmflags=0 if desc.writable() else VM_NOMAYWRITE)
        sealed = getattr(inode, "seals", 0) & NO_WRITES
        if sealed and prot & _mmap.PROT_WRITE:
            raise SyscallError(errno.EPERM)  # a write-sealed file (memfd)
        for _attempt in range(3):
            backing = _shared_backing(inode, t.mm.mf)
            if backing is None:
                break  # a file nothing can change: the copy below
            try:
                return t.mm.mmap_file(addr, length, prot, flags, backing, off, name=name,
                                      maywrite=desc.writable() and not sealed)
            except SyscallError as e:
                if e.errno != errno.ENODEV:  # ENODEV: a cache retired meanwhile
                    raise
        else:
            raise SyscallError(errno.EAGAIN)
    anon = (flags & ~0x3) | _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS
    # A shared mapping copied (a read-only file) still cannot be made writable.
    vmflags = VM_FILECOPY | (VM_NOMAYWRITE if shared and not desc.writable() else 0)
    start = t.mm.mmap(addr, length, prot, anon, name=name, vmflags=vmflags)
    want = (length + 0xFFF) & ~0xFFF
    data = read_pages(off, want)
    if data:
        t.mm.copy_out_force(start, data)
    if len(data) < want and inode is not None and inode.is_reg():
        # a short read is the file's end: the pages past it SIGBUS
        t.mm.guard_copy(start, length, inode, off, read_pages, off + len(data))
    return start


def _shared_backing(inode: Any, mf: Any) -> FileBacking | None:
    """The pages a MAP_SHARED mapping of ``inode`` maps: its own if the Sentry
    holds its data (tmpfs, overlay upper), else the live write-back cache; None
    (a copy) for a file of a read-only filesystem, which nothing can change."""
    get = getattr(inode, "shared_backing", None)
    if get is not None:
        return get(mf)
    if inode.fs.readonly:
        return None
    return writeback_for(inode, mf)


def msync(t: Task, a: Args) -> int:
    """msync(2): shared file pages written back to their files."""
    t.mm.msync(a[0], a[1], a[2] & 0xFFFFFFFF)
    return 0


MFD_CLOEXEC = 0x1
MFD_ALLOW_SEALING = 0x2
MFD_HUGETLB = 0x4
MFD_NOEXEC_SEAL = 0x8
MFD_EXEC = 0x10
MFD_HUGE_SHIFT, MFD_HUGE_MASK = 26, 0x3F
HUGE_PAGE_SHIFTS = frozenset({0, 21, 30})  # the default (2 MiB), 2 MiB, 1 GiB
MFD_NAME_MAX = 249  # NAME_MAX minus "memfd:"


def memfd_create(t: Task, a: Args) -> int:
    """memfd_create(2): an unnamed tmpfs file; MAP_SHARED of it maps its own
    pages like any tmpfs file; seals through fcntl (tmpfs.file_seals)."""
    flags = a[1] & 0xFFFFFFFF
    known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC
    if flags & MFD_HUGETLB:
        # The huge page size in bits 26-31 (log2; 0: the default).  Sizes
        # the kernel has no pool for are ENODEV (hugetlb_file_setup); ours
        # are the pools /proc/meminfo and x86-64 name, each empty.
        if flags & ~(known | MFD_HUGETLB | MFD_HUGE_MASK << MFD_HUGE_SHIFT):
            raise SyscallError(errno.EINVAL)
        if flags >> MFD_HUGE_SHIFT & MFD_HUGE_MASK not in HUGE_PAGE_SHIFTS:
            raise SyscallError(errno.ENODEV)
    elif flags & ~known:
        raise SyscallError(errno.EINVAL)
    if flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL:
        raise SyscallError(errno.EINVAL)
    try:
        name = t.mm.read_cstring(a[0], MFD_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.EINVAL) from None
        raise
    c = t.creds  # a new file is owned by the fs ids where they exist
    desc = memfd_file(name, getattr(c, "fsuid", c.euid), getattr(c, "fsgid", c.egid),
                      bool(flags & MFD_ALLOW_SEALING))
    return t.fds.install(desc, cloexec=bool(flags & MFD_CLOEXEC))


def mincore(t: Task, a: Args) -> int:
    """mincore(2): which pages hold data."""
    vec = t.mm.mincore(a[0], a[1])
    if vec:
        t.mm.copy_out(a[2], vec)
    return 0


CAP_SYS_PTRACE = 19
PVM_CHUNK = 1 << 20  # bytes copied per step, so one huge iovec needs no huge buffer
PAGE = 4096


def ptrace_access_target(t: Task, pid: int) -> Task:
    """The task process_vm_* and kcmp may access (ptrace_may_access with
    PTRACE_MODE_ATTACH_REALCREDS): one of the caller's own threads, or one
    whose real, effective and saved uids and gids all equal the caller's real
    ones and which is dumpable; a caller with CAP_SYS_PTRACE (root where
    capabilities are not modelled) may access any.  ESRCH for no such live task, EPERM otherwise."""
    target = t.kernel.tasks.get(pid) if pid > 0 else None
    if target is None or target.exited or target.tg.zombie or target.tg.exiting:
        raise SyscallError(errno.ESRCH)
    if target.tg is t.tg:
        return target
    me, them = t.creds, target.creds
    capable = getattr(me, "capable", None)  # sentry/kernel/creds.py where present
    if capable(CAP_SYS_PTRACE) if capable is not None else me.euid == 0:
        return target
    same = (me.uid == them.uid == them.euid == them.suid
            and me.gid == them.gid == them.egid == them.sgid)
    if not same or not int(target.tg.prctl.get("dumpable", 1)):
        raise SyscallError(errno.EPERM)
    return target


def _process_vm(t: Task, a: Args, write: bool) -> int:
    """process_vm_readv/writev: copy between the caller's iovecs and another
    process's; a fault after some bytes moved ends the call with that count."""
    pid, liov, liovcnt, riov, riovcnt, flags = a
    if flags:
        raise SyscallError(errno.EINVAL)
    local = read_iovecs(t, liov, liovcnt)
    remote = read_iovecs(t, riov, riovcnt)
    target = ptrace_access_target(t, s32(pid))
    src_mm, dst_mm = (t.mm, target.mm) if write else (target.mm, t.mm)
    src_iov, dst_iov = (local, remote) if write else (remote, local)
    done = 0
    si = di = 0
    s_off = d_off = 0
    try:
        while si < len(src_iov) and di < len(dst_iov):
            sbase, slen = src_iov[si]
            dbase, dlen = dst_iov[di]
            n = min(slen - s_off, dlen - d_off, PVM_CHUNK)
            if n > 0:
                try:
                    data = src_mm.copy_in(sbase + s_off, n)
                except SyscallError:
                    # Stop where the readable part of the source ends, as Linux
                    # copies page by page: only up to the next page boundary.
                    n = min(n, PAGE - (sbase + s_off) % PAGE)
                    data = src_mm.copy_in(sbase + s_off, n)
                try:
                    dst_mm.copy_out(dbase + d_off, data)
                except SyscallError:
                    n = min(n, PAGE - (dbase + d_off) % PAGE)
                    dst_mm.copy_out(dbase + d_off, data[:n])
                done += n
                s_off += n
                d_off += n
            if s_off >= slen:
                si, s_off = si + 1, 0
            if d_off >= dlen:
                di, d_off = di + 1, 0
    except SyscallError:
        if not done:
            raise
    return done


def process_vm_readv(t: Task, a: Args) -> int:
    """process_vm_readv(2)."""
    return _process_vm(t, a, False)


def process_vm_writev(t: Task, a: Args) -> int:
    """process_vm_writev(2)."""
    return _process_vm(t, a, True)


def munmap(t: Task, a: Args) -> int:
    """munmap(2)."""
    t.mm.munmap(a[0], a[1])
    return 0


def mprotect(t: Task, a: Args) -> int:
    """mprotect(2)."""
    prot = a[2]
    if prot & ~(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    t.mm.mprotect(a[0], a[1], prot & PROT_MASK)
    return 0


def mremap(t: Task, a: Args) -> int:
    """mremap(2): growing is charged against RLIMIT_AS (and RLIMIT_DATA for
    private writable memory) as a new mapping would be."""
    old_addr, old_len, new_len = a[0], a[1], a[2]
    if new_len > old_len and new_len <= MAX_LENGTH and not old_addr % PAGE_SIZE:
        grow = page_round_up(new_len) - page_round_up(old_len)
        vma = t.mm.vma_at(old_addr)
        data = vma is not None and vma.prot & _mmap.PROT_WRITE and not vma.shared
        _may_expand(t, grow, grow if data else 0)
    return t.mm.mremap(old_addr, old_len, new_len, a[3] & 0xFFFFFFFF, a[4])


def madvise(t: Task, a: Args) -> int:
    """madvise(2): DONTNEED/FREE zero private pages; hints are accepted."""
    t.mm.madvise(a[0], a[1], s32(a[2]))
    return 0


ENTRIES: list[Entry] = [
    supported("brk", brk),
    partial("mmap", mmap,
            note="MAP_PRIVATE file mappings are copies made at mmap time; pages past the "
            "file's end SIGBUS (after a truncate: of tmpfs and memfd files, shared mappings)"),
    supported("msync", msync),
    partial("memfd_create", memfd_create,
            note="MFD_HUGETLB (2 MiB, 1 GiB; other sizes ENODEV) makes an ordinary memfd "
            "of small pages, mappable although the pools are empty; F_SEAL_EXEC is only "
            "recorded"),
    supported("mincore", mincore),
    partial("process_vm_readv", process_vm_readv,
            note="no ptrace-attach LSM checks beyond Linux's uid/gid rule"),
    partial("process_vm_writev", process_vm_writev,
            note="no ptrace-attach LSM checks beyond Linux's uid/gid rule"),
    supported("munmap", munmap),
    supported("mprotect", mprotect),
    supported("mremap", mremap),  # a file mapping kept as several VMAs moves as one
    supported("madvise", madvise,
              note="MADV_HWPOISON/SOFT_OFFLINE are EINVAL, as a kernel without "
                   "MEMORY_FAILURE; MADV_MERGEABLE is accepted and merges nothing"),
]
