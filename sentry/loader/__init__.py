"""ELF executables and #! scripts into an address space (the Sentry's binfmt).

``elf`` parses and validates (pure, no memory); ``loader`` maps the image and
builds the initial stack through the memory manager's interface.
"""

from sentry.loader.elf import ElfError, ElfInfo, Segment, parse_elf, parse_shebang, shebang_argv
from sentry.loader.loader import LoadResult, host_auxv, load_elf

__all__ = [
    "ElfError",
    "ElfInfo",
    "LoadResult",
    "Segment",
    "host_auxv",
    "load_elf",
    "parse_elf",
    "parse_shebang",
    "shebang_argv",
]
