"""setuptools shim: cffi's build hook is a setup() keyword, not a pyproject key.

build_ext also links the vDSO image (sentry/vdso/_build.py): a freestanding
ELF shared object, not a Python extension, so no Extension describes it.
"""

import os
import runpy

from setuptools import setup
from setuptools.command.build_ext import build_ext


class BuildExtWithVdso(build_ext):
    """build_ext, then the vDSO image next to the package's modules."""

    def run(self) -> None:
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        build = runpy.run_path(os.path.join(here, "sentry", "vdso", "_build.py"))["build_image"]
        if self.inplace or getattr(self, "editable_mode", False):
            out = os.path.join(here, "sentry", "vdso")
        else:
            out = os.path.join(self.build_lib, "sentry", "vdso")
        build(out)


setup(
    cffi_modules=[
        "sentry/systrap/_build_stub.py:ffibuilder",
        "sentry/vdso/_build.py:ffibuilder",
    ],
    cmdclass={"build_ext": BuildExtWithVdso},
)
