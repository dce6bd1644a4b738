"""setuptools shim: cffi's build hook is a setup() keyword, not a pyproject key."""

from setuptools import setup

setup(cffi_modules=["sentry/systrap/_build_stub.py:ffibuilder"])
