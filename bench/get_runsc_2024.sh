#!/usr/bin/env bash
# Fetch Debian trixie's runsc (gVisor 2024, static, systrap platform) and
# extract it to /opt/runsc-2024 (or $1), beside bookworm's 2022 runsc.
# The system's apt sources are not changed: a temporary source list adds
# trixie on the same mirror that /etc/apt/sources.list.d names.
set -euo pipefail
dest=${1:-/opt/runsc-2024}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# This machine's own Debian mirror: the first URIs: line of a deb822 source
# (or deb line of a one-line list) that ends in /debian.
mirror=$( (grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
           grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
               awk '{print $2}') | grep -E '/debian/?$' | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$tmp/lists/partial" "$tmp/parts"
printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" > "$tmp/parts/trixie.sources"
opts=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$tmp/parts"
      -o Dir::State::lists="$tmp/lists")
apt-get "${opts[@]}" update -qq
(cd "$tmp" && apt-get "${opts[@]}" download runsc)
mkdir -p "$dest"
dpkg-deb -x "$tmp"/runsc_*.deb "$dest"
"$dest/usr/bin/runsc" --version
