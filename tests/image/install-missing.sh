#!/usr/bin/env bash
# install-missing.sh PACKAGE...: apt-get install the packages that are not installed yet, and
# nothing at all when every one is (a base made by tests/image/debroot.py has them already).
# The Dockerfile runs it from a bind mount, so it never lands in an image.
set -euo pipefail
missing=""
for package in "$@"; do
  dpkg-query -W -f='${db:Status-Status}\n' "$package" 2>/dev/null | grep -qx installed || missing="$missing $package"
done
[ -n "$missing" ] || exit 0
echo "install-missing.sh: installing${missing}"
apt-get update
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
rm -rf /var/lib/apt/lists/*
