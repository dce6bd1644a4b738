#!/usr/bin/env bash
# Build the Linux Test Project's syscall tests, statically, once, into a cache
# directory: tests/ltp/build.sh LTP_CHECKOUT [CACHE_DIR]
#
# No package registry ships LTP, so this needs a checkout of its repository
# (github.com/linux-test-project/ltp); CI, which reaches registries only,
# cannot run this suite. The build needs autoconf, automake, libtool, bison,
# flex, make and gcc (apt-get install -y autoconf automake libtool bison flex).
# The result: CACHE_DIR/testcases/kernel/syscalls/<family>/<test> binaries,
# which tests/ltp/runner.py runs natively and under runsc.py do.
set -euo pipefail
src=${1:?usage: tests/ltp/build.sh LTP_CHECKOUT [CACHE_DIR]}
cache=${2:-${PYVISOR_LTP_DIR:-/var/tmp/pyvisor-ltp}}
if [ -f "$cache/.built" ] && [ "$(cat "$cache/.built")" = "$(git -C "$src" rev-parse HEAD)" ]; then
    echo "LTP already built in $cache"; exit 0
fi
rm -rf "$cache"
git clone -q "$src" "$cache"
cd "$cache"
make autotools
./configure LDFLAGS=-static --without-numa --without-tirpc
make -C lib -j"$(nproc)"
make -C testcases/kernel/syscalls -j"$(nproc)" -k || true  # a few tests need what the host lacks
git rev-parse HEAD > .built
echo "LTP built in $cache"
