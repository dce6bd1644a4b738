"""Fixed facts about the application's address space.

The application owns [APP_START, APP_END). Everything at or above APP_END belongs
to the systrap stub (its code, its per-thread sysmsg slots and signal stacks), so
the memory manager never hands out an address there.
"""

PAGE_SIZE = 4096
PAGE_MASK = ~(PAGE_SIZE - 1)

APP_START = 0x10000  # Linux's default vm.mmap_min_addr
APP_END = 0x7E00_0000_0000  # the stub region starts here (sentry/systrap/stub.h)
STACK_TOP = 0x7DFF_FFFF_F000  # the initial stack grows down from here
STACK_SIZE = 8 << 20  # RLIMIT_STACK's usual 8 MiB
MMAP_BASE = 0x7DFF_0000_0000  # top-down mmap search starts below this
ELF_ET_DYN_BASE = 0x5555_5555_4000  # where a PIE executable is loaded, as on Linux
INTERP_BASE = 0x7DFE_0000_0000  # where the ELF interpreter (ld.so) is loaded


def page_round_down(x: int) -> int:
    return x & PAGE_MASK


def page_round_up(x: int) -> int:
    return (x + PAGE_SIZE - 1) & PAGE_MASK

# MAP_32BIT mappings go in [1 GiB, 2 GiB), searched bottom-up, as x86-64 Linux does.
MAP_32BIT_BASE = 0x4000_0000
MAP_32BIT_END = 0x8000_0000
