#!/usr/bin/env bash
# Cross-compile, on the host and without emulation, the wheels PyPI does not publish for a target
# architecture (on arm/v7: PyYAML and msgspec), so the image build installs wheels only and never
# runs a compiler under QEMU.
#
#   cross-wheels.sh ARCH BUILD_ROOT_TARBALL OUT_DIR SDIST...      ARCH: arm64 | armv7
#
# The compiler is Debian's cross gcc (gcc-arm-linux-gnueabihf, installed by tests/image/engine.sh).
# The target's Python headers, its sysconfig data (_sysconfigdata__linux_<triplet>.py: compiler
# names, flags, EXT_SUFFIX) and libyaml come from the build root that tests/image/debroot.py made
# for that architecture (python3-dev and libyaml-dev): only those parts are extracted, next to
# the tarball, and come first on the include path (the sysconfig data names /usr/include/python3.11,
# which on the host holds the host's headers, or nothing).  The host's python3.11 runs the build backends with the target's sysconfig
# (_PYTHON_SYSCONFIGDATA_NAME, _PYTHON_HOST_PLATFORM), so the wheels are tagged
# cp311-cp311-linux_<machine>.  libyaml is linked statically, like PyPI's own PyYAML wheels: the
# runtime image has no libyaml.  The build requirements (setuptools, Cython...) are host wheels from
# PyPI in a venv of their own, kept next to the extracted root.
set -euo pipefail

usage="usage: cross-wheels.sh arm64|armv7 BUILD_ROOT_TARBALL OUT_DIR SDIST..."
arch="${1:?$usage}" root_tarball="${2:?$usage}" out="${3:?$usage}"
shift 3
PYTHON="${PYTHON:-python3}"
case "$arch" in
  arm64) triplet=aarch64-linux-gnu machine=aarch64 ;;
  armv7) triplet=arm-linux-gnueabihf machine=armv7l ;;
  *) echo "cross-wheels.sh: no cross compiler for ${arch}: use arm64 or armv7" >&2; exit 2 ;;
esac
log() { printf '[cross-wheels %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
command -v "${triplet}-gcc" >/dev/null ||
  { log "${triplet}-gcc not found: install Debian's gcc-${triplet} (tests/image/engine.sh)"; exit 1; }

# The parts of the target root a C extension build needs (headers, static libyaml, sysconfig data).
root="${root_tarball%.tar}.cross"
if [ ! -f "${root}/.done" ]; then
  log "extracting the ${arch} headers and libraries from $(basename "$root_tarball")"
  rm -rf "$root" && mkdir -p "$root"
  tar -xf "$root_tarball" -C "$root" --wildcards \
    ./usr/include/python3.11 "./usr/include/${triplet}/python3.11" ./usr/include/yaml.h \
    "./usr/lib/${triplet}/libyaml.a" './usr/lib/python3.11/_sysconfigdata__*'
  touch "${root}/.done"
fi

# The sdists' build requirements, for the host.
requirements="$("$PYTHON" - "$@" <<'PY'
import sys, tarfile, tomllib
requires = set()
for sdist in sys.argv[1:]:
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml"))
        requires |= set(tomllib.loads(archive.extractfile(member).read().decode())["build-system"]["requires"])
print("\n".join(sorted(requires)))
PY
)"
venv="${root}/venv-$(echo "$requirements" | sha256sum | cut -c1-12)"
if [ ! -f "${venv}/.done" ]; then
  log "host build requirements: $(echo "$requirements" | tr '\n' ' ')"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  echo "$requirements" | PIP_FIND_LINKS="" "${venv}/bin/python" -m pip install --quiet -r /dev/stdin
  touch "${venv}/.done"
fi

mkdir -p "$out"
for sdist in "$@"; do
  log "${arch}: building $(basename "$sdist")"
  # No build isolation (its pip would pick build requirements for the target); no pip cache (its
  # wheels are keyed by the sdist, not by the platform they were built for).
  # PYYAML_FORCE_*: fail instead of quietly building PyYAML without its libyaml extension.
  env _PYTHON_HOST_PLATFORM="linux-${machine}" _PYTHON_SYSCONFIGDATA_NAME="_sysconfigdata__linux_${triplet}" \
    PYTHONPATH="${root}/usr/lib/python3.11" CFLAGS="-I${root}/usr/include/python3.11 -I${root}/usr/include" \
    LDFLAGS="-L${root}/usr/lib/${triplet}" PYYAML_FORCE_CYTHON=1 PYYAML_FORCE_LIBYAML=1 \
    PIP_NO_INDEX=1 PIP_FIND_LINKS="" PIP_NO_CACHE_DIR=1 \
    "${venv}/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$out" "$sdist"
done
for wheel in "$out"/*.whl; do
  case "$wheel" in
    *-linux_"${machine}".whl) ;;
    *) log "${wheel}: not tagged linux_${machine}"; exit 1 ;;
  esac
done
