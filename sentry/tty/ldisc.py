"""The line discipline (N_TTY): what happens to bytes between a terminal's ends.

Input (typed at the master, read at the replica) goes through input
processing (ISTRIP, IGNCR/ICRNL/INLCR), signal characters (ISIG: VINTR,
VQUIT, VSUSP), flow control (IXON: VSTOP/VSTART), and in canonical mode line
editing (VERASE, VWERASE, VKILL, VEOF, VEOL/VEOL2, newline), with echo to
the output side.  Output (written at the replica, read at the master) goes
through OPOST (ONLCR, OCRNL).

Facts kept from Linux's n_tty.c, termios(3) and gVisor's devpts:

* Canonical reads return at most one line, including its terminator; a line
  ended by VEOF is delivered without it, and VEOF on an empty line makes the
  read return 0.  A line holds at most 4095 characters; more are dropped
  (a terminator always fits).
* Echo is output-processed like written data (ONLCR turns an echoed newline
  into CR LF).  With ECHOCTL a control character other than TAB and NL
  echoes as ^X (DEL as ^?), and erasing it takes two columns back.  VERASE
  with ECHOE echoes "\\b \\b"; VKILL with ECHOKE erases the line that way,
  else echoes the kill character and (ECHOK) a newline.  ECHONL echoes NL
  even without ECHO.  VEOF is never echoed.
* An ISIG character is not queued: unless NOFLSH both queues are flushed, it
  is echoed (^C) and its signal goes to the foreground process group (the
  caller delivers it, outside the terminal's lock).
* Leaving canonical mode makes the edited text readable at once; entering it
  turns what was queued into the line being edited.

Not modelled: parity, breaks, VLNEXT, VREPRINT, VDISCARD, ECHOPRT, tab
column arithmetic (a TAB erases one column), packet mode.

The caller holds the owning terminal's lock around every method.
"""

from __future__ import annotations

from collections import deque

from sentry.tty import termios as t

CANON_MAX = 4095  # one line (Linux N_TTY_BUF_SIZE - 1)
INPUT_MAX = 4096  # bytes queued for the replica before the master's write waits
OUTPUT_MAX = 16384  # bytes queued for the master before the replica's write waits
ECHO_SLACK = OUTPUT_MAX  # echo may overfill the output queue by this much, then is dropped

SIGINT, SIGQUIT, SIGTSTP = 2, 3, 20


class LineDiscipline:
    """The two queues of one terminal and the rules that fill them."""

    def __init__(self) -> None:
        self.termios = t.Termios()
        self.edit = bytearray()  # canonical: the line being typed
        self.lines: deque[bytes] = deque()  # canonical: finished lines
        self.raw = bytearray()  # non-canonical: readable bytes
        self.out = bytearray()  # for the master to read
        self.stopped = False  # output stopped (VSTOP, TCOOFF)

    # -- state -----------------------------------------------------------
    @property
    def canonical(self) -> bool:
        return bool(self.termios.lflag & t.ICANON)

    def readable(self) -> int:
        """Bytes a replica read could return now (FIONREAD)."""
        if self.canonical:
            return sum(len(line) for line in self.lines)
        return len(self.raw)

    def input_ready(self) -> bool:
        """A replica read would not wait (a line, an EOF mark, or raw bytes)."""
        return bool(self.lines) if self.canonical else bool(self.raw)

    def input_room(self) -> int:
        queued = len(self.raw) + sum(len(line) for line in self.lines)
        return INPUT_MAX - queued

    def output_ready(self) -> bool:
        return bool(self.out) and not self.stopped

    def set_termios(self, new: t.Termios) -> None:
        """TCSETS: switching canonical mode moves queued text across, as Linux."""
        was = self.canonical
        self.termios = new
        now = self.canonical
        if was and not now:
            self.raw += b"".join(self.lines) + self.edit
            self.lines.clear()
            self.edit.clear()
        elif now and not was:
            self.edit += self.raw
            del self.edit[CANON_MAX:]
            self.raw.clear()
        if not new.iflag & t.IXON:
            self.stopped = False

    def flush_input(self) -> None:
        self.edit.clear()
        self.lines.clear()
        self.raw.clear()

    def flush_output(self) -> None:
        self.out.clear()

    # -- replica side ------------------------------------------------------
    def take_input(self, count: int) -> bytes:
        """Up to ``count`` readable bytes (one line at most when canonical);
        b"" for an EOF mark.  The caller checked input_ready()."""
        if self.canonical:
            line = self.lines.popleft()
            if len(line) > count:
                self.lines.appendleft(line[count:])
                return line[:count]
            return line
        data = bytes(self.raw[:count])
        del self.raw[:count]
        return data

    def output(self, data: bytes) -> None:
        """Replica write: OPOST processing into the master's queue."""
        self.out += self._opost(data)

    def output_room(self) -> int:
        return OUTPUT_MAX - len(self.out)

    def _opost(self, data: bytes) -> bytes:
        tio = self.termios
        if not tio.oflag & t.OPOST:
            return data
        if tio.oflag & t.OCRNL:
            data = data.replace(b"\r", b"\n")
        if tio.oflag & t.ONLCR:
            data = data.replace(b"\n", b"\r\n")
        return data

    # -- master side -------------------------------------------------------
    def take_output(self, count: int) -> bytes:
        data = bytes(self.out[:count])
        del self.out[:count]
        return data

    def input(self, data: bytes, signals: list[int]) -> int:
        """Master write: process ``data`` until the input queue is full.

        Returns how many bytes were consumed; appends to ``signals`` the
        signals the foreground group must get (the caller sends them).
        """
        n = 0
        for c in data:
            if not self.canonical and self.input_room() <= 0:
                break
            if self.canonical and self.input_room() <= 0 and not self.edit:
                break
            self._input_byte(c, signals)
            n += 1
        return n

    def _input_byte(self, c: int, signals: list[int]) -> None:
        tio = self.termios
        iflag, lflag = tio.iflag, tio.lflag
        if iflag & t.ISTRIP:
            c &= 0x7F
        if c == 0x0D:
            if iflag & t.IGNCR:
                return
            if iflag & t.ICRNL:
                c = 0x0A
        elif c == 0x0A and iflag & t.INLCR:
            c = 0x0D
        if lflag & t.ISIG:
            for index, signo in ((t.VINTR, SIGINT), (t.VQUIT, SIGQUIT), (t.VSUSP, SIGTSTP)):
                if tio.is_char(c, index):
                    if not lflag & t.NOFLSH:
                        self.flush_input()
                        self.flush_output()
                    if lflag & t.ECHO:
                        self._echo(c)
                    signals.append(signo)
                    return
        if iflag & t.IXON:
            if tio.is_char(c, t.VSTOP):
                self.stopped = True
                return
            if tio.is_char(c, t.VSTART):
                self.stopped = False
                return
            if iflag & t.IXANY:
                self.stopped = False
        if not lflag & t.ICANON:
            self.raw.append(c)
            if lflag & t.ECHO:
                self._echo(c)
            return
        self._canon_byte(c)

    def _canon_byte(self, c: int) -> None:
        tio = self.termios
        lflag = tio.lflag
        echo = bool(lflag & t.ECHO)
        if tio.is_char(c, t.VERASE):
            self._erase(1)
            return
        if lflag & t.IEXTEN and tio.is_char(c, t.VWERASE):
            self._erase_word()
            return
        if tio.is_char(c, t.VKILL):
            if echo and lflag & t.ECHOKE and lflag & t.ECHOE:
                self._erase(len(self.edit))
                return
            self.edit.clear()
            if echo:
                self._echo(c)
                if lflag & t.ECHOK:
                    self._echo_raw(b"\n")
            return
        if tio.is_char(c, t.VEOF):
            self.lines.append(bytes(self.edit))
            self.edit.clear()
            return
        if c == 0x0A or tio.is_char(c, t.VEOL) or tio.is_char(c, t.VEOL2):
            self.edit.append(c)
            self.lines.append(bytes(self.edit))
            self.edit.clear()
            if echo or (c == 0x0A and lflag & t.ECHONL):
                self._echo(c)
            return
        if len(self.edit) >= CANON_MAX:
            return
        self.edit.append(c)
        if echo:
            self._echo(c)

    def _erase(self, chars: int) -> None:
        """Remove ``chars`` characters (UTF-8 aware under IUTF8) from the edited line."""
        tio = self.termios
        for _ in range(chars):
            if not self.edit:
                return
            c = self.edit.pop()
            if tio.iflag & t.IUTF8:
                while self.edit and 0x80 <= c < 0xC0:
                    c = self.edit.pop()
            if not tio.lflag & t.ECHO:
                continue
            if tio.lflag & t.ECHOE:
                cols = 2 if self._shows_caret(c) else 1
                self._echo_raw(b"\b \b" * cols)
            else:
                self._echo(tio.cc[t.VERASE])

    def _erase_word(self) -> None:
        """VWERASE: trailing blanks, then the word before them."""
        n = 0
        i = len(self.edit)
        while i > 0 and self.edit[i - 1] in b" \t":
            i -= 1
            n += 1
        while i > 0 and self.edit[i - 1] not in b" \t":
            i -= 1
            n += 1
        self._erase(n)

    # -- echo --------------------------------------------------------------
    def _shows_caret(self, c: int) -> bool:
        return bool(self.termios.lflag & t.ECHOCTL) and (c < 0x20 and c not in (0x09, 0x0A)
                                                         or c == 0x7F)

    def _echo(self, c: int) -> None:
        if self._shows_caret(c):
            self._echo_raw(bytes((ord("^"), c ^ 0x40)))
        else:
            self._echo_raw(bytes((c,)))

    def _echo_raw(self, data: bytes) -> None:
        if len(self.out) < OUTPUT_MAX + ECHO_SLACK:
            self.out += self._opost(data)
