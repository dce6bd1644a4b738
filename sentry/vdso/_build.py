"""Build script for the vDSO: the image (a freestanding ELF shared object the
application maps) and ``sentry.vdso._vvar`` (the Sentry's cffi helpers that
calibrate and publish the time page).

Run directly (``python3 sentry/vdso/_build.py``) to build both in place;
``pip install`` builds them through setup.py (cffi_modules and build_ext).
The image is linked by vdso.lds into one PT_LOAD whose file offsets are its
addresses, with no relocations: glibc's loader takes a vDSO as already
relocated, and the Sentry maps the file as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "vdso.so"

IMAGE_FLAGS = [
    "-O2",
    "-fPIC",
    "-shared",
    "-nostdlib",
    "-ffreestanding",
    "-fno-stack-protector",  # the application owns %fs
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-fno-jump-tables",
    "-mno-red-zone",
    "-Wall",
    "-Werror",
    "-Wl,--hash-style=both",  # DT_HASH and DT_GNU_HASH, as Linux's vDSO
    "-Wl,-soname=linux-vdso.so.1",
    "-Wl,-Bsymbolic",
    "-Wl,--no-undefined",
    "-Wl,-z,max-page-size=4096",
    "-Wl,--build-id=none",
]


def build_image(out_dir: str = HERE, cc: str | None = None) -> str:
    """Compile and link vdso.c into ``out_dir/vdso.so``; returns the path."""
    out = os.path.join(out_dir, IMAGE)
    os.makedirs(out_dir, exist_ok=True)
    cmd = [cc or os.environ.get("CC", "gcc"), *IMAGE_FLAGS,
           "-Wl,-T," + os.path.join(HERE, "vdso.lds"), "-I", HERE,
           "-o", out, os.path.join(HERE, "vdso.c")]
    subprocess.run(cmd, check=True)
    return out


CDEF = """
#define VVAR_ABI_VERSION ...
#define VVAR_SHIFT ...
#define VVAR_NCLOCKS ...
#define VVAR_SIZE ...
struct vvar_clock { uint64_t base_cycles; int64_t base_ns; uint64_t mult; uint64_t pad; };
struct vvar { uint32_t seq; uint32_t enabled; uint32_t abi; uint32_t slow_mono;
              struct vvar_clock clk[4]; };
void vvar_sample(int clk, int tries, uint64_t *out);
uint64_t vvar_now_cycles(void);
void vvar_publish(struct vvar *v, const uint64_t *mult, const int64_t *reset_ns,
                  const uint64_t *reset_tsc, uint32_t enabled);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_src = "sentry/vdso/vvar_host.c" if os.path.exists("sentry/vdso/vvar_host.c") else os.path.join(
    HERE, "vvar_host.c"
)
ffibuilder.set_source(
    "sentry.vdso._vvar",
    '#include "vvar.h"\n'
    "void vvar_sample(int, int, uint64_t *);\n"
    "uint64_t vvar_now_cycles(void);\n"
    "void vvar_publish(struct vvar *, const uint64_t *, const int64_t *, const uint64_t *,"
    " uint32_t);\n",
    sources=[_src],
    include_dirs=[HERE],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    build_image()
    os.chdir(os.path.dirname(os.path.dirname(HERE)))
    ffibuilder.compile(tmpdir=".", verbose=False)
    sys.exit(0)
