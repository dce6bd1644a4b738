"""Credentials: a task's ids, capability sets and securebits, as Linux's ``struct cred``.

Facts about Linux's credentials that shape this module:

* A task's credentials are one immutable object, replaced whole on change
  (``prepare_creds``/``commit_creds``); fork shares the object until either
  side changes it. Here :class:`Credentials` is a frozen record and every
  transition returns a new one; handlers assign ``task.creds``.
* Permission checks ask for a capability (``capable(CAP_DAC_OVERRIDE)``),
  never ``euid == 0``: root's power is its capability sets, which the uid
  transitions below grant and take away (commoncap.c's
  ``cap_emulate_setxuid``: leaving uid 0 in all of real, effective and saved
  clears the permitted and effective sets unless SECBIT_KEEP_CAPS; an
  effective uid going 0 -> non-zero clears the effective set, non-zero -> 0
  restores it from permitted; the fs uid moving to or from 0 drops or raises
  the file-system capabilities in the effective set).
* File access uses the fs uid/gid, which follow the effective ids unless
  setfsuid/setfsgid set them apart.
* At execve (``cap_bprm_creds_from_file``, without file capabilities, which
  pyvisor does not store): a set-user-ID or set-group-ID file sets the
  effective id unless the mount is nosuid or no_new_privs is set; a root
  effective or real uid gets permitted = bounding | inheritable (unless
  SECBIT_NOROOT) and, for a root effective uid, effective = permitted;
  otherwise permitted and effective are the ambient set; saved and fs ids
  become the effective ones; a set-id exec clears the ambient set and makes
  the exec "secure" (AT_SECURE).
* There is one user namespace: capabilities are checked against the task's
  effective set only.
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from shm import records
from shm.records import record

# Capability numbers (linux/capability.h).
CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_LINUX_IMMUTABLE = 9
CAP_NET_BIND_SERVICE = 10
CAP_NET_BROADCAST = 11
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_IPC_LOCK = 14
CAP_IPC_OWNER = 15
CAP_SYS_MODULE = 16
CAP_SYS_RAWIO = 17
CAP_SYS_CHROOT = 18
CAP_SYS_PTRACE = 19
CAP_SYS_PACCT = 20
CAP_SYS_ADMIN = 21
CAP_SYS_BOOT = 22
CAP_SYS_NICE = 23
CAP_SYS_RESOURCE = 24
CAP_SYS_TIME = 25
CAP_SYS_TTY_CONFIG = 26
CAP_MKNOD = 27
CAP_LEASE = 28
CAP_AUDIT_WRITE = 29
CAP_AUDIT_CONTROL = 30
CAP_SETFCAP = 31
CAP_MAC_OVERRIDE = 32
CAP_MAC_ADMIN = 33
CAP_SYSLOG = 34
CAP_WAKE_ALARM = 35
CAP_BLOCK_SUSPEND = 36
CAP_AUDIT_READ = 37
CAP_PERFMON = 38
CAP_BPF = 39
CAP_CHECKPOINT_RESTORE = 40
CAP_LAST_CAP = CAP_CHECKPOINT_RESTORE
ALL_CAPS = (1 << (CAP_LAST_CAP + 1)) - 1

CAP_NAMES = {
    name: value for name, value in globals().items()
    if name.startswith("CAP_") and name not in ("CAP_LAST_CAP",) and isinstance(value, int)
}

# The capabilities that follow the fs uid (CAP_FS_SET in the kernel's
# capability.h: CAP_FS_MASK plus CAP_LINUX_IMMUTABLE).
CAP_FS_MASK = sum(1 << c for c in (CAP_CHOWN, CAP_MKNOD, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                   CAP_FOWNER, CAP_FSETID, CAP_LINUX_IMMUTABLE,
                                   CAP_MAC_OVERRIDE))

# securebits (linux/securebits.h): each bit has a lock bit one above it.
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS = 1 << 4
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
SECURE_ALL_BITS = SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS \
    | SECBIT_NO_CAP_AMBIENT_RAISE
SECURE_ALL_LOCKS = SECURE_ALL_BITS << 1

NO_ID = 0xFFFF_FFFF  # (uid_t)-1: "leave unchanged" in set*id and chown
NGROUPS_MAX = 65536


@record(frozen=True, slots=True)
class Credentials:
    """A task's ids and capabilities; replaced, never changed in place."""

    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    groups: tuple[int, ...] = ()  # supplementary groups (getgroups(2))
    fsuid: int = 0
    fsgid: int = 0
    cap_permitted: int = ALL_CAPS
    cap_effective: int = ALL_CAPS
    cap_inheritable: int = 0
    cap_bounding: int = ALL_CAPS
    cap_ambient: int = 0
    securebits: int = 0

    def capable(self, cap: int) -> bool:
        """Whether the effective set holds ``cap`` (Linux's capable())."""
        return bool(self.cap_effective >> cap & 1)

    def in_group(self, gid: int) -> bool:
        """in_group_p(): the fs gid or a supplementary group."""
        return gid == self.fsgid or gid in self.groups


def for_launch(uid: int, gid: int, groups: tuple[int, ...] = (),
               caps: dict[str, int] | None = None) -> Credentials:
    """A started process's credentials, as runc leaves them: the ids and the
    capability sets given (OCI ``process.capabilities``' five sets, or for
    ``runsc.py do`` the caller's own), then execve's transition, so a root
    process holds bounding | inheritable and any other uid its ambient set."""
    caps = caps or {}
    base = Credentials(uid, uid, uid, gid, gid, gid, tuple(sorted(groups)), uid, gid,
                       cap_permitted=caps.get("permitted", 0),
                       cap_effective=caps.get("effective", 0),
                       cap_inheritable=caps.get("inheritable", 0),
                       cap_bounding=caps.get("bounding", ALL_CAPS),
                       cap_ambient=caps.get("ambient", 0))
    # runc raises the ambient set with capset(2), which keeps only what is
    # both permitted and inheritable.
    base = replace(base, cap_ambient=base.cap_ambient & base.cap_permitted
                   & base.cap_inheritable)
    return exec_transition(base, None, None)[0]


def host_caps(status: str) -> dict[str, int]:
    """The caller's bounding, inheritable and ambient sets from the text of
    its /proc/self/status: what ``runsc.py do`` hands the program, as exec
    would."""
    keys = {"CapBnd:": "bounding", "CapInh:": "inheritable", "CapAmb:": "ambient"}
    out = {}
    for line in status.splitlines():
        head, _, value = line.partition("\t")
        if head in keys:
            out[keys[head]] = int(value.strip(), 16) & ALL_CAPS
    return out


def replace(c: Credentials, **changes: object) -> Credentials:
    """A copy of ``c`` with ``changes``."""
    return records.replace(c, **changes)  # type: ignore[return-value]


# --- id transitions -------------------------------------------------------------------

def _fixup_caps(old: Credentials, new: Credentials) -> Credentials:
    """cap_emulate_setxuid() and the fs-uid rule, unless SECBIT_NO_SETUID_FIXUP."""
    if old.securebits & SECBIT_NO_SETUID_FIXUP:
        return new
    prm, eff, amb = new.cap_permitted, new.cap_effective, new.cap_ambient
    was_root = 0 in (old.uid, old.euid, old.suid)
    if was_root and 0 not in (new.uid, new.euid, new.suid):
        if not old.securebits & SECBIT_KEEP_CAPS:
            prm = eff = 0
        amb = 0  # setresuid to non-root then exec must drop privileges
    if old.euid == 0 and new.euid != 0:
        eff = 0
    if old.euid != 0 and new.euid == 0:
        eff = prm
    if old.fsuid == 0 and new.fsuid != 0:
        eff &= ~CAP_FS_MASK
    elif old.fsuid != 0 and new.fsuid == 0:
        eff |= prm & CAP_FS_MASK
    return replace(new, cap_permitted=prm, cap_effective=eff, cap_ambient=amb)


def _check_id(value: int) -> int:
    """An id argument as a uid_t; (uid_t)-1 is EINVAL where a real id is wanted."""
    value &= 0xFFFF_FFFF
    if value == NO_ID:
        raise SyscallError(errno.EINVAL)
    return value


@record(frozen=True, slots=True)
class IdKind:
    """The field names of one kind of id (uids or gids) and the capability
    that lifts its rules: the set*id rules are the same for both."""

    real: str
    eff: str
    saved: str
    fs: str
    cap: int


UIDS = IdKind("uid", "euid", "suid", "fsuid", CAP_SETUID)
GIDS = IdKind("gid", "egid", "sgid", "fsgid", CAP_SETGID)


def _current(c: Credentials, k: IdKind) -> tuple[int, int, int, int]:
    return getattr(c, k.real), getattr(c, k.eff), getattr(c, k.saved), getattr(c, k.fs)


def _set_id(c: Credentials, k: IdKind, value: int) -> Credentials:
    """setuid/setgid: all four ids with the capability, else the effective
    (and fs) id to the real or saved one."""
    value = _check_id(value)
    real, _, saved, _ = _current(c, k)
    if c.capable(k.cap):
        return replace(c, **{k.real: value, k.eff: value, k.saved: value, k.fs: value})
    if value in (real, saved):
        return replace(c, **{k.eff: value, k.fs: value})
    raise SyscallError(errno.EPERM)


def _set_re(c: Credentials, k: IdKind, new_real: int, new_eff: int) -> Credentials:
    """setreuid/setregid: -1 leaves an id; the saved id follows a changed
    effective one (or any change of the real one)."""
    new_real, new_eff = new_real & 0xFFFF_FFFF, new_eff & 0xFFFF_FFFF
    real, eff, saved, _ = _current(c, k)
    priv = c.capable(k.cap)
    r, e = real, eff
    if new_real != NO_ID:
        if not priv and new_real not in (real, eff):
            raise SyscallError(errno.EPERM)
        r = new_real
    if new_eff != NO_ID:
        if not priv and new_eff not in (real, eff, saved):
            raise SyscallError(errno.EPERM)
        e = new_eff
    if new_real != NO_ID or (new_eff != NO_ID and new_eff != real):
        saved = e
    return replace(c, **{k.real: r, k.eff: e, k.saved: saved, k.fs: e})


def _set_res(c: Credentials, k: IdKind, *ids: int) -> Credentials:
    """setresuid/setresgid: without the capability each new id must be one of
    the current three; -1 leaves one."""
    ids = tuple(v & 0xFFFF_FFFF for v in ids)
    current = _current(c, k)[:3]
    if not c.capable(k.cap) and any(v != NO_ID and v not in current for v in ids):
        raise SyscallError(errno.EPERM)
    r, e, s = (old if v == NO_ID else v for v, old in zip(ids, current, strict=True))
    return replace(c, **{k.real: r, k.eff: e, k.saved: s, k.fs: e})


def _set_fs(c: Credentials, k: IdKind, value: int) -> tuple[Credentials, int]:
    """setfsuid/setfsgid: the new credentials (``c`` itself when nothing
    changes) and the old fs id, which is returned whatever happens."""
    value &= 0xFFFF_FFFF
    current = _current(c, k)
    old = current[3]
    if value != NO_ID and value != old and (value in current or c.capable(k.cap)):
        return replace(c, **{k.fs: value}), old
    return c, old


def setuid(c: Credentials, uid: int) -> Credentials:
    """setuid(2)."""
    return _fixup_caps(c, _set_id(c, UIDS, uid))


def setreuid(c: Credentials, ruid: int, euid: int) -> Credentials:
    """setreuid(2)."""
    return _fixup_caps(c, _set_re(c, UIDS, ruid, euid))


def setresuid(c: Credentials, ruid: int, euid: int, suid: int) -> Credentials:
    """setresuid(2)."""
    return _fixup_caps(c, _set_res(c, UIDS, ruid, euid, suid))


def setfsuid(c: Credentials, fsuid: int) -> tuple[Credentials, int]:
    """setfsuid(2): returns the new credentials and the old fs uid (always)."""
    new, old = _set_fs(c, UIDS, fsuid)
    return (c if new is c else _fixup_caps(c, new)), old


# gids: the same rules, with no capability side effects.

def setgid(c: Credentials, gid: int) -> Credentials:
    """setgid(2)."""
    return _set_id(c, GIDS, gid)


def setregid(c: Credentials, rgid: int, egid: int) -> Credentials:
    """setregid(2)."""
    return _set_re(c, GIDS, rgid, egid)


def setresgid(c: Credentials, rgid: int, egid: int, sgid: int) -> Credentials:
    """setresgid(2)."""
    return _set_res(c, GIDS, rgid, egid, sgid)


def setfsgid(c: Credentials, fsgid: int) -> tuple[Credentials, int]:
    """setfsgid(2): returns the new credentials and the old fs gid."""
    return _set_fs(c, GIDS, fsgid)


def setgroups(c: Credentials, groups: tuple[int, ...]) -> Credentials:
    """setgroups(2)'s new credentials, the list sorted as Linux keeps it. The
    syscall checks CAP_SETGID, the count and the ids first, in Linux's order
    (before it reads the list from the application)."""
    return replace(c, groups=tuple(sorted(groups)))


# --- capability sets -----------------------------------------------------------------

def capset(c: Credentials, effective: int, permitted: int, inheritable: int) -> Credentials:
    """capset(2) on the caller, with cap_capset()'s rules."""
    effective &= ALL_CAPS
    permitted &= ALL_CAPS
    inheritable &= ALL_CAPS
    if not c.capable(CAP_SETPCAP) and inheritable & ~(c.cap_inheritable | c.cap_permitted):
        raise SyscallError(errno.EPERM)
    if inheritable & ~(c.cap_inheritable | c.cap_bounding):
        raise SyscallError(errno.EPERM)
    if permitted & ~c.cap_permitted:
        raise SyscallError(errno.EPERM)
    if effective & ~permitted:
        raise SyscallError(errno.EPERM)
    return replace(c, cap_effective=effective, cap_permitted=permitted,
                   cap_inheritable=inheritable,
                   cap_ambient=c.cap_ambient & permitted & inheritable)


def valid_cap(cap: int) -> bool:
    return 0 <= cap <= CAP_LAST_CAP


def drop_bounding(c: Credentials, cap: int) -> Credentials:
    """PR_CAPBSET_DROP."""
    if not valid_cap(cap):
        raise SyscallError(errno.EINVAL)
    if not c.capable(CAP_SETPCAP):
        raise SyscallError(errno.EPERM)
    return replace(c, cap_bounding=c.cap_bounding & ~(1 << cap))


def set_securebits(c: Credentials, bits: int) -> Credentials:
    """PR_SET_SECUREBITS: CAP_SETPCAP; a locked bit cannot change or unlock."""
    old = c.securebits
    if (((old & SECURE_ALL_LOCKS) >> 1) & (old ^ bits)
            or old & SECURE_ALL_LOCKS & ~bits
            or bits & ~(SECURE_ALL_LOCKS | SECURE_ALL_BITS)
            or not c.capable(CAP_SETPCAP)):
        raise SyscallError(errno.EPERM)
    return replace(c, securebits=bits)


def set_keepcaps(c: Credentials, on: int) -> Credentials:
    """PR_SET_KEEPCAPS."""
    if on > 1:
        raise SyscallError(errno.EINVAL)
    if c.securebits & SECBIT_KEEP_CAPS_LOCKED:
        raise SyscallError(errno.EPERM)
    bits = c.securebits | SECBIT_KEEP_CAPS if on else c.securebits & ~SECBIT_KEEP_CAPS
    return replace(c, securebits=bits)


def ambient(c: Credentials, op: int, cap: int) -> tuple[Credentials, int]:
    """PR_CAP_AMBIENT's IS_SET (1), RAISE (2) and LOWER (3); CLEAR_ALL (4) takes no cap."""
    if op == 4:
        return replace(c, cap_ambient=0), 0
    if not valid_cap(cap):
        raise SyscallError(errno.EINVAL)
    bit = 1 << cap
    if op == 1:
        return c, int(bool(c.cap_ambient & bit))
    if op == 2:
        if (not c.cap_permitted & bit or not c.cap_inheritable & bit
                or c.securebits & SECBIT_NO_CAP_AMBIENT_RAISE):
            raise SyscallError(errno.EPERM)
        return replace(c, cap_ambient=c.cap_ambient | bit), 0
    if op == 3:
        return replace(c, cap_ambient=c.cap_ambient & ~bit), 0
    raise SyscallError(errno.EINVAL)


# --- execve ---------------------------------------------------------------------------

def exec_transition(c: Credentials, setuid_to: int | None,
                    setgid_to: int | None) -> tuple[Credentials, bool]:
    """The credentials after execve of a file (no file capabilities), and
    whether the exec is secure (AT_SECURE).

    ``setuid_to``/``setgid_to``: the file's owner or group when its set-id
    bit applies (the caller has already ruled out nosuid and no_new_privs).
    """
    euid = c.euid if setuid_to is None else setuid_to
    egid = c.egid if setgid_to is None else setgid_to
    is_setid = euid != c.euid or egid != c.egid
    permitted = 0
    effective = False
    if not c.securebits & SECBIT_NOROOT:
        if euid == 0 or c.uid == 0:
            permitted = c.cap_bounding | c.cap_inheritable
        effective = euid == 0
    ambient_set = 0 if is_setid else c.cap_ambient
    permitted |= ambient_set
    new = replace(c, euid=euid, suid=euid, fsuid=euid, egid=egid, sgid=egid, fsgid=egid,
                  cap_permitted=permitted,
                  cap_effective=permitted if effective else ambient_set,
                  cap_ambient=ambient_set,
                  securebits=c.securebits & ~SECBIT_KEEP_CAPS)
    grew = bool(new.cap_permitted & ~ambient_set)
    secure = is_setid or (new.uid != 0 and (effective or grew))
    return new, secure


def from_names(names: tuple[str, ...] | list[str]) -> int:
    """A capability set from OCI names ("CAP_CHOWN", ...); unknown names are
    the bundle parser's to refuse."""
    out = 0
    for name in names:
        cap = CAP_NAMES.get(name)
        if cap is not None:
            out |= 1 << cap
    return out
