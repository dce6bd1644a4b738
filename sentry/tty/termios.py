"""struct termios and struct winsize as the kernel's ioctls see them.

Facts (termios(3), tty_ioctl(4), include/uapi/asm-generic/termbits.h):

* TCGETS/TCSETS carry the kernel's struct termios, 36 bytes: four u32 flag
  words (iflag, oflag, cflag, lflag), the line discipline byte, then 19
  control characters.  glibc's tcgetattr converts this to its own larger
  struct; the speed lives in the CBAUD bits of cflag.
* A new pty replica starts with tty_std_termios except that the control word
  is B38400|CS8|CREAD (no HUPCL): iflag ICRNL|IXON, oflag OPOST|ONLCR, lflag
  ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN, and the c_cc defaults
  ^C ^\\ DEL ^U ^D, TIME 0, MIN 1, ^Q ^S ^Z, ^R ^O ^W ^V.
* A control character set to 0 (_POSIX_VDISABLE) is disabled.
* Both ends of a pty share one termios: the master's TCGETS/TCSETS act on the
  replica's settings, as Linux's tty_mode_ioctl does (``real_tty``).
"""

from __future__ import annotations

import struct

from shm.records import field, record

# c_iflag
IGNBRK, BRKINT, IGNPAR, PARMRK, INPCK, ISTRIP = 0o1, 0o2, 0o4, 0o10, 0o20, 0o40
INLCR, IGNCR, ICRNL, IUCLC, IXON, IXANY, IXOFF = 0o100, 0o200, 0o400, 0o1000, 0o2000, 0o4000, \
    0o10000
IMAXBEL, IUTF8 = 0o20000, 0o40000
# c_oflag
OPOST, OLCUC, ONLCR, OCRNL, ONOCR, ONLRET = 0o1, 0o2, 0o4, 0o10, 0o20, 0o40
# c_cflag
B38400, CS8, CREAD, HUPCL = 0o17, 0o60, 0o200, 0o2000
# c_lflag
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL = 0o1, 0o2, 0o10, 0o20, 0o40, 0o100
NOFLSH, TOSTOP, ECHOCTL, ECHOPRT, ECHOKE, FLUSHO = 0o200, 0o400, 0o1000, 0o2000, 0o4000, 0o10000
PENDIN, IEXTEN = 0o40000, 0o100000

# c_cc indices
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN, VSWTC = 0, 1, 2, 3, 4, 5, 6, 7
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VDISCARD, VWERASE, VLNEXT, VEOL2 = range(8, 17)
NCCS = 19

DEFAULT_CC = bytes([3, 0x1C, 0x7F, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1A, 0, 0x12, 0x0F, 0x17,
                    0x16, 0, 0, 0])

_TERMIOS = struct.Struct("<IIIIB19s")
TERMIOS_SIZE = _TERMIOS.size  # 36
_TERMIO = struct.Struct("<HHHHB8s")  # struct termio, unpadded
NCC = 8
_WINSIZE = struct.Struct("<HHHH")
WINSIZE_SIZE = _WINSIZE.size  # 8


@record(slots=True)
class Termios:
    """One terminal's settings (the replica's; the master shares them)."""

    iflag: int = ICRNL | IXON
    oflag: int = OPOST | ONLCR
    cflag: int = B38400 | CS8 | CREAD
    lflag: int = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
    line: int = 0
    cc: bytearray = field(default_factory=lambda: bytearray(DEFAULT_CC))

    def pack(self) -> bytes:
        return _TERMIOS.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line,
                             bytes(self.cc))

    def pack_termio(self) -> bytes:
        """The old struct termio (TCGETA): 16-bit flags, the line, the first
        eight control characters; 17 bytes, as Linux copies them."""
        return _TERMIO.pack(self.iflag & 0xFFFF, self.oflag & 0xFFFF, self.cflag & 0xFFFF,
                            self.lflag & 0xFFFF, self.line, bytes(self.cc[:NCC]))

    @classmethod
    def unpack(cls, data: bytes) -> Termios:
        iflag, oflag, cflag, lflag, line, cc = _TERMIOS.unpack(data[:TERMIOS_SIZE])
        return cls(iflag, oflag, cflag, lflag, line, bytearray(cc))

    def copy(self) -> Termios:
        return Termios(self.iflag, self.oflag, self.cflag, self.lflag, self.line,
                       bytearray(self.cc))

    def is_char(self, c: int, index: int) -> bool:
        """``c`` is the (enabled) special character at ``index``."""
        v = self.cc[index]
        return v != 0 and c == v


@record(frozen=True, slots=True)
class WinSize:
    """struct winsize: rows, columns, and the (unused) pixel sizes."""

    rows: int = 0
    cols: int = 0
    xpixel: int = 0
    ypixel: int = 0

    def pack(self) -> bytes:
        return _WINSIZE.pack(self.rows, self.cols, self.xpixel, self.ypixel)

    @classmethod
    def unpack(cls, data: bytes) -> WinSize:
        return cls(*_WINSIZE.unpack(data[:WINSIZE_SIZE]))
