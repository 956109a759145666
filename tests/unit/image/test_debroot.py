"""tests/image/debroot.py's own rules, without a download: which files the slim filters keep (the ones
the agent runs must stay), the merged-/usr layout, and what it writes in place of the maintainer
scripts (dpkg's database, alternatives).  The roots it makes are proven by the image tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.image import debroot

SLIM = debroot.read_filters(Path(debroot.__file__).with_name("dpkg-slim.cfg"))


@pytest.mark.parametrize(
    "path",
    [
        "/usr/bin/git",
        "/usr/lib/git-core/git-remote-http",  # https remotes
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",  # ssh signature verification
        "/usr/bin/gpg",
        "/usr/bin/tini",
        "/usr/bin/perl",  # perl-base: dpkg and debconf need it
        "/usr/lib/x86_64-linux-gnu/perl-base/strict.pm",
        "/usr/lib/python3.11/ssl.py",
        "/usr/lib/python3.11/unittest/mock.py",
        "/usr/share/doc/git/copyright",
        "/usr/share/locale/locale.alias",
        "/etc/ssl/certs/ca-certificates.crt",
    ],
)
def test_slim_filters_keep_what_the_agent_and_dpkg_run(path: str) -> None:
    assert not debroot.excluded(path, SLIM)


@pytest.mark.parametrize(
    "path",
    [
        "/usr/share/doc/git/RelNotes/2.39.0.txt",
        "/usr/share/man/man1/git.1.gz",
        "/usr/share/locale/de/LC_MESSAGES/git.mo",
        "/usr/share/perl/5.36.0/CPAN.pm",
        "/usr/lib/aarch64-linux-gnu/perl/5.36.0/POSIX.pm",
        "/usr/lib/arm-linux-gnueabihf/libperl.so.5.36.0",
        "/usr/lib/git-core/git-daemon",
        "/usr/lib/x86_64-linux-gnu/gconv/BIG5.so",
        "/usr/lib/python3.11/lib2to3/main.py",
        "/usr/bin/tini-static",
    ],
)
def test_slim_filters_leave_out_documentation_perl_modules_and_unused_programs(path: str) -> None:
    assert debroot.excluded(path, SLIM)


def test_the_last_matching_filter_decides_like_dpkg() -> None:
    rules = [(True, "/a/*"), (False, "/a/keep*"), (True, "/a/keep-not")]
    assert debroot.excluded("/a/b", rules)
    assert not debroot.excluded("/a/keep", rules)
    assert debroot.excluded("/a/keep-not", rules)
    assert not debroot.excluded("/b", rules)


def test_bin_sbin_and_lib_are_merged_into_usr() -> None:
    assert debroot.merged("./bin/ls") == "./usr/bin/ls"
    assert debroot.merged("./lib64/ld-linux-x86-64.so.2") == "./usr/lib64/ld-linux-x86-64.so.2"
    assert debroot.merged("./sbin/ldconfig") == "./usr/sbin/ldconfig"
    assert debroot.merged("./etc/passwd") == "./etc/passwd"
    assert debroot.merged("./libexec/x") == "./libexec/x"  # only the merged directories


def written(build: Callable[[debroot.RootWriter], None]) -> dict[str, tarfile.TarInfo]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        writer = debroot.RootWriter(out, [])
        build(writer)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_dpkg_database_marks_every_package_installed_with_its_files_and_conffiles() -> None:
    libc = debroot.Package("libc6", Path("libc6.deb"))
    libc.control = "Package: libc6\nVersion: 2.36\nArchitecture: arm64\nMulti-Arch: same"
    libc.members = {"conffiles": b"/etc/ld.so.conf\n", "postinst": b"#!/bin/sh\n"}
    libc.paths = ["/.", "/etc", "/etc/ld.so.conf"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        writer = debroot.RootWriter(out, [])
        writer.files["./etc/ld.so.conf"] = b"include /etc/ld.so.conf.d/*.conf\n"
        debroot.dpkg_database(writer, [libc], "arm64")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        status = archive.extractfile("./var/lib/dpkg/status").read().decode()  # type: ignore[union-attr]
        listed = archive.extractfile("./var/lib/dpkg/info/libc6:arm64.list").read().decode()  # type: ignore[union-attr]
        postinst = archive.getmember("./var/lib/dpkg/info/libc6:arm64.postinst")
        layout = archive.extractfile("./var/lib/dpkg/info/format").read()  # type: ignore[union-attr]
    assert status.splitlines()[:2] == ["Package: libc6", "Status: install ok installed"]
    digest = hashlib.md5(b"include /etc/ld.so.conf.d/*.conf\n").hexdigest()  # noqa: S324 (dpkg's format)
    assert f"Conffiles:\n /etc/ld.so.conf {digest}" in status
    assert listed.splitlines() == ["/.", "/etc", "/etc/ld.so.conf"]
    assert postinst.mode == 0o755
    assert layout == b"1\n"  # arch-qualified info files (libc6:arm64.list) need the multiarch layout


def test_alternatives_follow_the_postinst_scripts_best_priority_and_existing_targets() -> None:
    mawk = debroot.Package("mawk", Path("mawk.deb"))
    mawk.members["postinst"] = (
        b"update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n"
        b"    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n"
        b"    --slave /usr/bin/nawk nawk /usr/bin/mawk\n"
    )
    other = debroot.Package("original-awk", Path("oawk.deb"))
    other.members["postinst"] = b"update-alternatives --install /usr/bin/awk awk /usr/bin/original-awk 1\n"

    def build(writer: debroot.RootWriter) -> None:
        writer.seen.update({"./usr/bin/mawk", "./usr/bin/original-awk"})
        debroot.alternatives(writer, [mawk, other])

    members = written(build)
    assert members["./usr/bin/awk"].linkname == "/etc/alternatives/awk"
    assert members["./etc/alternatives/awk"].linkname == "/usr/bin/mawk"  # priority 5 beats 1
    assert members["./etc/alternatives/nawk"].linkname == "/usr/bin/mawk"
    assert "./usr/share/man/man1/awk.1.gz" not in members  # its target was filtered out
    assert "./var/lib/dpkg/alternatives/awk" in members
