"""System V IPC: semget, semop, semtimedop, semctl, msgget, msgsnd, msgrcv,
msgctl, shmget, shmat, shmdt, shmctl. The objects and their rules live in
sentry/kernel/ipc/; this module reads and writes the application's
structures (x86-64 layouts of ``struct ipc64_perm``, ``semid64_ds``,
``msqid64_ds``, ``shmid64_ds``, ``seminfo``,
``msginfo``) and checks arguments in Linux's order.
"""

from __future__ import annotations

import errno
import struct
import time
from typing import TYPE_CHECKING

from sentry.kernel.creds import CAP_IPC_LOCK, CAP_SYS_RESOURCE
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc import msg as ipcmsg
from sentry.kernel.ipc import sem as ipcsem
from sentry.kernel.ipc import shm as ipcshm
from sentry.kernel.ipc.registry import IPC_NOWAIT, IPCMNI, S_IRUGO, S_IWUGO, IpcObject
from sentry.kernel.namespaces import ipc_of
from sentry.mm.vma import (
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_SHARED,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from syscalls.abi import TIMESPEC, s32
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL = 11, 12, 13, 14, 15, 16, 17
SEM_STAT, SEM_INFO, SEM_STAT_ANY = 18, 19, 20
MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13

PERM = "iIIIIIHH4xQQ"  # key, uid, gid, cuid, cgid, mode, seq, pad, 2 unused
SEMID_DS = struct.Struct("<" + PERM + "qQqQQQQ")
MSQID_DS = struct.Struct("<" + PERM + "qqqQQQiiQQ")
SEMINFO = struct.Struct("<10i")
MSGINFO = struct.Struct("<7iH2x")
SEMBUF = struct.Struct("<HhH")  # sem_num, sem_op, sem_flg
LONG = struct.Struct("<q")
USHORT = struct.Struct("<H")


def _perm(o: IpcObject) -> tuple[int, ...]:
    return (o.key, o.uid, o.gid, o.cuid, o.cgid, o.mode, o.seq % 65536, 0, 0, 0)


def _read_perm(t: Task, addr: int, st: struct.Struct) -> tuple[int, int, int, tuple[int, ...]]:
    """IPC_SET's input: uid, gid, mode, and the rest of the structure."""
    fields = st.unpack(t.mm.copy_in(addr, st.size))
    return fields[1], fields[2], fields[5], fields


# --- semaphores ----------------------------------------------------------------------

def semget(t: Task, a: Args) -> int:
    """semget(2)."""
    return ipc_of(t).sem.semget(t.creds, s32(a[0]), s32(a[1]), s32(a[2]))


def _semtimedop(t: Task, semid: int, sops_addr: int, nsops: int, timeout: int) -> int:
    if nsops < 1:
        raise SyscallError(errno.EINVAL)
    if nsops > ipcsem.SEMOPM:
        raise SyscallError(errno.E2BIG)
    raw = t.mm.copy_in(sops_addr, SEMBUF.size * nsops)
    sops = [SEMBUF.unpack_from(raw, SEMBUF.size * i) for i in range(nsops)]
    deadline = None
    if timeout:
        sec, nsec = TIMESPEC.unpack(t.mm.copy_in(timeout, TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(errno.EINVAL)
        deadline = time.monotonic() + sec + nsec / 1e9
    ipc_of(t).sem.semop(t, semid, sops, deadline)
    return 0


def semop(t: Task, a: Args) -> int:
    """semop(2): never restarted after a signal (EINTR)."""
    return _semtimedop(t, s32(a[0]), a[1], a[2] & 0xFFFF_FFFF, 0)


def semtimedop(t: Task, a: Args) -> int:
    """semtimedop(2): EAGAIN when the timeout passes."""
    return _semtimedop(t, s32(a[0]), a[1], a[2] & 0xFFFF_FFFF, a[3])


def _seminfo(t: Task, cmd: int, addr: int) -> int:
    ns = ipc_of(t).sem
    with ns.cond:
        used = cmd == SEM_INFO
        info = SEMINFO.pack(ipcsem.SEMMNS, IPCMNI, ipcsem.SEMMNS, ipcsem.SEMMNS,
                            ipcsem.SEMMSL, ipcsem.SEMOPM, ipcsem.SEMOPM,
                            len(ns.sets) if used else 20, ipcsem.SEMVMX,
                            sum(s.nsems for s in ns.sets) if used else ipcsem.SEMAEM)
        top = ns.sets.max_index()
    t.mm.copy_out(addr, info)
    return top


def semctl(t: Task, a: Args) -> int:
    """semctl(2); the fourth argument is the union semun, passed by value."""
    semid, semnum, cmd, arg = s32(a[0]), s32(a[1]), s32(a[2]), a[3]
    if semid < 0:
        raise SyscallError(errno.EINVAL)
    if cmd in (IPC_INFO, SEM_INFO):
        return _seminfo(t, cmd, arg)
    ns = ipc_of(t).sem
    c = t.creds
    if cmd == SETVAL:
        val = s32(arg)
        if not 0 <= val <= ipcsem.SEMVMX:
            raise SyscallError(errno.ERANGE)
    if cmd == SETALL:  # read before the lock: application memory may fault
        with ns.cond:
            nsems = ns.sets.lookup(semid).nsems
        raw = t.mm.copy_in(arg, USHORT.size * nsems)
        values = list(struct.unpack(f"<{nsems}H", raw))
        if any(v > ipcsem.SEMVMX for v in values):
            raise SyscallError(errno.ERANGE)
    if cmd == IPC_SET:
        uid, gid, mode, _ = _read_perm(t, arg, SEMID_DS)
    out = b""
    with ns.cond:
        s = ns.sets.at_index(semid) if cmd in (SEM_STAT, SEM_STAT_ANY) else ns.sets.lookup(semid)
        if cmd in (IPC_STAT, SEM_STAT, SEM_STAT_ANY):
            if cmd != SEM_STAT_ANY:
                s.check(c, S_IRUGO)
            out = SEMID_DS.pack(*_perm(s), s.otime, 0, s.ctime, 0, s.nsems, 0, 0)
            result = 0 if cmd == IPC_STAT else s.id
        elif cmd in (GETVAL, GETPID, GETNCNT, GETZCNT, SETVAL):
            if not 0 <= semnum < s.nsems:
                raise SyscallError(errno.EINVAL)
            s.check(c, S_IWUGO if cmd == SETVAL else S_IRUGO)
            if cmd == SETVAL:
                ns.set_values(s, {semnum: val}, t.tg.tgid)
                return 0
            return {GETVAL: lambda: s.values[semnum], GETPID: lambda: s.pids[semnum],
                    GETNCNT: lambda: s.count_waiters(semnum, zero=False),
                    GETZCNT: lambda: s.count_waiters(semnum, zero=True)}[cmd]()
        elif cmd == GETALL:
            s.check(c, S_IRUGO)
            out = struct.pack(f"<{s.nsems}H", *s.values)
            result = 0
        elif cmd == SETALL:
            s.check(c, S_IWUGO)
            if len(values) != s.nsems:  # the set changed meanwhile: Linux re-checks too
                raise SyscallError(errno.EIDRM)
            ns.set_values(s, dict(enumerate(values)), t.tg.tgid)
            return 0
        elif cmd in (IPC_SET, IPC_RMID):
            s.check_owner(c)
            if cmd == IPC_RMID:
                ns.remove(s)
            else:
                s.set_perm(uid, gid, mode)
            return 0
        else:
            raise SyscallError(errno.EINVAL)
    t.mm.copy_out(arg, out)
    return result


# --- message queues ------------------------------------------------------------------

def msgget(t: Task, a: Args) -> int:
    """msgget(2)."""
    return ipc_of(t).msg.msgget(t.creds, s32(a[0]), s32(a[1]))


def msgsnd(t: Task, a: Args) -> int:
    """msgsnd(2)."""
    msqid, msgp, msgsz, flags = s32(a[0]), a[1], a[2], s32(a[3])
    (mtype,) = LONG.unpack(t.mm.copy_in(msgp, LONG.size))
    if msgsz > ipcmsg.MSGMAX or msgsz >= 1 << 63 or msqid < 0 or mtype < 1:
        raise SyscallError(errno.EINVAL)
    text = t.mm.copy_in(msgp + LONG.size, msgsz) if msgsz else b""
    ipc_of(t).msg.msgsnd(t, msqid, mtype, text, flags)
    return 0


def msgrcv(t: Task, a: Args) -> int:
    """msgrcv(2): returns the number of text bytes copied."""
    msqid, msgp, bufsz, msgtyp, flags = s32(a[0]), a[1], a[2], a[3], s32(a[4])
    msgtyp = msgtyp - (1 << 64) if msgtyp >= 1 << 63 else msgtyp
    if msqid < 0 or bufsz >= 1 << 63:
        raise SyscallError(errno.EINVAL)
    if flags & ipcmsg.MSG_COPY and (flags & ipcmsg.MSG_EXCEPT or not flags & IPC_NOWAIT):
        raise SyscallError(errno.EINVAL)
    mtype, text = ipc_of(t).msg.msgrcv(t, msqid, bufsz, msgtyp, flags)
    t.mm.copy_out(msgp, LONG.pack(mtype) + text)
    return len(text)


def _msginfo(t: Task, cmd: int, addr: int) -> int:
    ns = ipc_of(t).msg
    with ns.cond:
        if cmd == MSG_INFO:
            queues = list(ns.queues)
            pool = len(queues)
            msgmap = sum(len(q.messages) for q in queues)
            tql = sum(q.cbytes for q in queues)
        else:
            pool, msgmap, tql = IPCMNI * ipcmsg.MSGMNB // 1024, ipcmsg.MSGMNB, ipcmsg.MSGMNB
        top, mni = ns.queues.max_index(), ns.queues.mni
    t.mm.copy_out(addr, MSGINFO.pack(pool, msgmap, ipcmsg.MSGMAX, ipcmsg.MSGMNB,
                                     mni, 16, tql, 0xFFFF))
    return top


def msgctl(t: Task, a: Args) -> int:
    """msgctl(2)."""
    msqid, cmd, buf = s32(a[0]), s32(a[1]), a[2]
    if msqid < 0:
        raise SyscallError(errno.EINVAL)
    if cmd in (IPC_INFO, MSG_INFO):
        return _msginfo(t, cmd, buf)
    ns = ipc_of(t).msg
    c = t.creds
    if cmd == IPC_SET:
        uid, gid, mode, fields = _read_perm(t, buf, MSQID_DS)
        qbytes = fields[15]
    with ns.cond:
        if cmd in (MSG_STAT, MSG_STAT_ANY):
            q = ns.queues.at_index(msqid)
        else:
            q = ns.queues.lookup(msqid)
        if cmd in (IPC_STAT, MSG_STAT, MSG_STAT_ANY):
            if cmd != MSG_STAT_ANY:
                q.check(c, S_IRUGO)
            out = MSQID_DS.pack(*_perm(q), q.stime, q.rtime, q.ctime, q.cbytes,
                                len(q.messages), q.qbytes, q.lspid, q.lrpid, 0, 0)
            result = 0 if cmd == IPC_STAT else q.id
        elif cmd in (IPC_SET, IPC_RMID):
            q.check_owner(c)
            if cmd == IPC_RMID:
                ns.remove(q)
                return 0
            if qbytes > ipcmsg.MSGMNB and not c.capable(CAP_SYS_RESOURCE):
                raise SyscallError(errno.EPERM)
            q.set_perm(uid, gid, mode)
            q.qbytes = qbytes
            ns.cond.notify_all()
            return 0
        else:
            raise SyscallError(errno.EINVAL)
    t.mm.copy_out(buf, out)
    return result


# --- shared memory -------------------------------------------------------------------

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
SHMLBA = 4096
SHMID_DS = struct.Struct("<" + PERM + "QqqqiiQQQ")
SHMINFO = struct.Struct("<9Q")
SHM_INFO_S = struct.Struct("<i4x5Q")


def shmget(t: Task, a: Args) -> int:
    """shmget(2)."""
    return ipc_of(t).shm.shmget(t.kernel, t.creds, s32(a[0]), a[1], s32(a[2]), t.tg.tgid)


def shmat(t: Task, a: Args) -> int:
    """shmat(2): the segment mapped MAP_SHARED; a given address is taken whole
    (EINVAL if it overlaps a mapping) unless SHM_REMAP."""
    shmid, addr, flags = s32(a[0]), a[1], s32(a[2])
    if addr % SHMLBA:
        if not flags & SHM_RND:
            raise SyscallError(errno.EINVAL)
        addr -= addr % SHMLBA
    if flags & SHM_REMAP and not addr:
        raise SyscallError(errno.EINVAL)
    prot, want = PROT_READ, S_IRUGO
    if not flags & SHM_RDONLY:
        prot, want = prot | PROT_WRITE, want | S_IWUGO
    if flags & SHM_EXEC:
        prot, want = prot | PROT_EXEC, want | 0o111
    ns = ipc_of(t).shm
    with ns.lock:
        seg = ns.segments.lookup(shmid)
        seg.check(t.creds, want)
        backing = seg.map_backing(t.kernel.mf)
        size, key = seg.size, seg.key
    mflags = MAP_SHARED
    if addr:
        mflags |= MAP_FIXED if flags & SHM_REMAP else MAP_FIXED_NOREPLACE
    try:
        where = t.mm.mmap_file(addr, size, prot, mflags, backing, 0,
                               name=f"/SYSV{key & 0xFFFF_FFFF:08x} (deleted)",
                               maywrite=not flags & SHM_RDONLY)
    except SyscallError as e:
        raise SyscallError(errno.EINVAL if e.errno == errno.EEXIST else e.errno) from None
    seg.atime, seg.lpid = int(time.time()), t.tg.tgid
    return where


def shmdt(t: Task, a: Args) -> int:
    """shmdt(2): the attachment that starts at the address (EINVAL if none)."""
    addr = a[0]
    if addr % 4096:
        raise SyscallError(errno.EINVAL)
    ns = ipc_of(t).shm
    with ns.lock:
        for seg in ns.segments:
            off = seg.first_offset()
            if off is not None and addr in t.mm.attachments(seg.backing, off):
                break
        else:
            raise SyscallError(errno.EINVAL)
    t.mm.munmap(addr, seg.pages * 4096)
    with ns.lock:
        seg.dtime, seg.lpid = int(time.time()), t.tg.tgid
        ns.sweep(t.kernel)
    return 0


def shmctl(t: Task, a: Args) -> int:
    """shmctl(2)."""
    shmid, cmd, buf = s32(a[0]), s32(a[1]), a[2]
    if shmid < 0:
        raise SyscallError(errno.EINVAL)
    ns = ipc_of(t).shm
    c = t.creds
    if cmd in (IPC_INFO, SHM_INFO):
        with ns.lock:
            ns.sweep(t.kernel)
            segs = list(ns.segments)
            top, mni, shmmax = ns.segments.max_index(), ns.segments.mni, ns.shmmax
        if cmd == IPC_INFO:
            out = SHMINFO.pack(shmmax, ipcshm.SHMMIN, mni, ipcshm.SHMMNI,
                               ipcshm.SHMALL, 0, 0, 0, 0)
        else:
            pages = sum(s.pages for s in segs)
            out = SHM_INFO_S.pack(len(segs), pages, pages, 0, 0, 0)
        t.mm.copy_out(buf, out)
        return top
    if cmd == IPC_SET:
        uid, gid, mode, _ = _read_perm(t, buf, SHMID_DS)
    with ns.lock:
        seg = ns.segments.at_index(shmid) if cmd in (SHM_STAT, SHM_STAT_ANY) \
            else ns.segments.lookup(shmid)
        if cmd in (IPC_STAT, SHM_STAT, SHM_STAT_ANY):
            if cmd != SHM_STAT_ANY:
                seg.check(c, S_IRUGO)
            perm = list(_perm(seg))
            perm[5] = seg.mode | seg.flags
            out = SHMID_DS.pack(*perm, seg.size, seg.atime, seg.dtime, seg.ctime, seg.cpid,
                                seg.lpid, seg.nattch(t.kernel), 0, 0)
            result = 0 if cmd == IPC_STAT else seg.id
        elif cmd in (IPC_SET, IPC_RMID):
            seg.check_owner(c)
            if cmd == IPC_RMID:
                ns.remove(t.kernel, seg)
            else:
                seg.set_perm(uid, gid, mode)
            return 0
        elif cmd in (SHM_LOCK, SHM_UNLOCK):
            if not c.capable(CAP_IPC_LOCK) and c.euid not in (seg.uid, seg.cuid):
                raise SyscallError(errno.EPERM)
            seg.flags = seg.flags | ipcshm.SHM_LOCKED if cmd == SHM_LOCK \
                else seg.flags & ~ipcshm.SHM_LOCKED
            return 0
        else:
            raise SyscallError(errno.EINVAL)
    t.mm.copy_out(buf, out)
    return result


ENTRIES: list[Entry] = [
    supported("semget", semget),
    supported("semop", semop),
    supported("semtimedop", semtimedop),
    supported("semctl", semctl),
    supported("msgget", msgget),
    supported("msgsnd", msgsnd),
    supported("msgrcv", msgrcv),
    supported("msgctl", msgctl),
    supported("shmget", shmget),
    supported("shmat", shmat),
    supported("shmdt", shmdt),
    supported("shmctl", shmctl),
]
