"""A Debian root filesystem for any architecture, made on the host without running anything built
for the target (no QEMU, no chroot, no maintainer scripts):

    python3 tests/image/debroot.py --arch arm64 --work DIR --out ROOT.tar \\
        --slim tests/image/dpkg-slim.cfg --mirror 'deb http://deb.debian.org/debian bookworm main' \\
        python3 git ...

The host's apt resolves minbase (Essential, Priority: required, apt) plus the packages named, for the
target architecture, and downloads them; their data goes straight into one tarball with the slim
filters applied and /bin, /sbin and /lib merged into /usr.  What Debian's maintainer scripts would
create in such a root is written directly: the users and groups (base-passwd), dpkg's database
(every package "install ok installed", with its file lists and conffiles, so apt and dpkg-query work
in the image), the CA bundle (ca-certificates), /etc/localtime (tzdata), the awk alternative (mawk)
and the standard library's byte-code (python3), compiled by the host's Python when it is the same
minor version (byte-code does not depend on the machine) and left out otherwise.

Under QEMU, mmdebstrap took 12-50 minutes per foreign root (dpkg, apt and every maintainer script
emulated); this takes about a minute, most of it the download.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import importlib.util
import io
import marshal
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Directories the packages ship that base-files' maintainer script turns into symlinks.
MIGRATED = {"./var/run": "/run", "./var/lock": "/run/lock"}
# The fixed timestamp of every generated file (the packages' own files keep theirs).
EPOCH = 1_700_000_000


@dataclass
class Package:
    name: str
    deb: Path
    control: str = ""
    members: dict[str, bytes] = field(default_factory=dict)  # control.tar members but control
    paths: list[str] = field(default_factory=list)  # as dpkg lists them: /., /usr, /usr/bin/git, ...

    def field(self, name: str) -> str:
        match = re.search(rf"^{name}: (.*)$", self.control, re.MULTILINE)
        return match[1].strip() if match else ""

    @property
    def info_name(self) -> str:
        """dpkg's name for the package's files in /var/lib/dpkg/info (arch-qualified if M-A: same)."""
        if self.field("Multi-Arch") == "same":
            return f"{self.name}:{self.field('Architecture')}"
        return self.name


def log(message: str) -> None:
    print(f"[debroot {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- apt on the host, for the target architecture ----------------------------------------------
def apt(work: Path, arch: str, *args: str) -> str:
    options = [
        f"-oDir={work}",
        f"-oDir::State::status={work}/status",
        f"-oAPT::Architecture={arch}",
        f"-oAPT::Architectures={arch}",
        "-oAcquire::Languages=none",
        "-oAPT::Install-Recommends=false",
        "-oDebug::NoLocking=true",
        "-oDir::Etc::TrustedParts=/nonexistent",
    ]
    result = subprocess.run(
        ["apt-get", *options, *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SystemExit(f"debroot: apt-get {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr}")
    return result.stdout


def download(work: Path, arch: str, mirrors: list[str], packages: list[str], update: bool) -> list[Package]:
    """Resolve minbase plus ``packages`` for ``arch`` and download them; sorted by name."""
    for sub in ("lists/partial", "archives/partial", "etc/sources.list.d", "etc/preferences.d"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "status").write_text("")
    (work / "etc" / "sources.list").write_text(
        "".join(line.replace("deb ", f"deb [signed-by={KEYRING}] ", 1) + "\n" for line in mirrors)
    )
    dirs = [
        f"-oDir::Etc={work}/etc",
        f"-oDir::State::Lists={work}/lists",
        f"-oDir::Cache::Archives={work}/archives",
    ]
    if update:
        apt(work, arch, *dirs, "update")
    # minbase, and usr-is-merged (the layout this root has) rather than the usrmerge converter
    wanted = ["?essential", "?priority(required)", "apt", "usr-is-merged", *packages]
    simulated = apt(work, arch, *dirs, "--simulate", "install", *wanted)
    versions = dict(re.findall(r"^Inst (\S+) \((\S+) ", simulated, re.MULTILINE))
    apt(work, arch, *dirs, "--download-only", "--yes", "install", *wanted)
    found = []
    for name, version in sorted(versions.items()):
        filename = f"{name}_{version.replace(':', '%3a')}_*.deb"
        matches = sorted((work / "archives").glob(filename))
        if not matches:
            raise SystemExit(f"debroot: apt did not download {name} {version} ({filename})")
        found.append(Package(name, matches[-1]))
    return found


# --- slim filters (dpkg's path-exclude / path-include) -----------------------------------------
def read_filters(path: Path) -> list[tuple[bool, str]]:
    rules = []
    for line in path.read_text().splitlines():
        key, _, glob = line.strip().partition("=")
        if key in ("path-exclude", "path-include"):
            rules.append((key == "path-exclude", glob))
    return rules


def excluded(path: str, rules: list[tuple[bool, str]]) -> bool:
    verdict = False
    for exclude, glob in rules:
        if fnmatch.fnmatchcase(path, glob):
            verdict = exclude
    return verdict


# --- the tarball -------------------------------------------------------------------------------
def merged(name: str) -> str:
    """``./bin/ls`` -> ``./usr/bin/ls``: Debian's merged-/usr layout."""
    parts = name.removeprefix("./").split("/", 1)
    if parts[0] in MERGED:
        return "./usr/" + "/".join(parts)
    return "./" + name.removeprefix("./")


class RootWriter:
    """Appends packages and generated files to one tar stream, each path once (first one wins)."""

    def __init__(self, out: tarfile.TarFile, rules: list[tuple[bool, str]]) -> None:
        self.out = out
        self.rules = rules
        self.seen: set[str] = set()
        self.files: dict[str, bytes] = {}  # content of the files the fix-ups read back
        self.python_sources: dict[str, tuple[bytes, int]] = {}

    def add(self, info: tarfile.TarInfo, data: bytes | None = None) -> None:
        if info.name in self.seen:
            return
        self.seen.add(info.name)
        self.out.addfile(info, io.BytesIO(data) if data is not None else None)

    def add_file(self, name: str, data: bytes, mode: int = 0o644, *, gid: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.gid = len(data), mode, EPOCH, gid
        self.add(info, data)

    def add_dir(self, name: str, mode: int = 0o755, gid: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.gid = tarfile.DIRTYPE, mode, EPOCH, gid
        self.add(info)

    def add_symlink(self, name: str, target: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, EPOCH
        self.add(info)

    def add_package(self, package: Package) -> None:
        control = subprocess.run(
            ["dpkg-deb", "--ctrl-tarfile", str(package.deb)], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(control)) as archive:
            for member in archive.getmembers():
                stream = archive.extractfile(member) if member.isfile() else None
                if stream is None:
                    continue
                name = member.name.removeprefix("./")
                if name == "control":
                    package.control = stream.read().decode().strip()
                else:
                    package.members[name] = stream.read()
        data = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(package.deb)], stdout=subprocess.PIPE)
        assert data.stdout is not None
        dropped: dict[str, bytes] = {}  # files the filters left out, in case a hard link needs one
        with tarfile.open(fileobj=data.stdout, mode="r|") as archive:
            for member in archive:
                original = "/" + member.name.removeprefix("./").rstrip("/")
                stream = archive.extractfile(member) if member.isfile() else None
                content = stream.read() if stream is not None else None
                if not member.isdir() and excluded(original, self.rules):
                    if content is not None:
                        dropped[merged(member.name)] = content
                    continue
                if member.islnk() and merged(member.linkname) in dropped:
                    # a hard link to a file left out: the link becomes a copy of that file
                    content = dropped.pop(merged(member.linkname))
                    member.type, member.linkname, member.size = tarfile.REGTYPE, "", len(content)
                elif member.islnk():
                    member.linkname = merged(member.linkname)
                package.paths.append("/." if original == "/" else original)
                member.name = merged(member.name).rstrip("/") or "."
                if member.name.removeprefix("./") in MERGED or member.name in MIGRATED:
                    continue  # directories that become symlinks (see configure)
                if content is not None and self._keep(member.name):
                    self.files[member.name] = content
                if content is not None and member.name.endswith(".py") and "/python3." in member.name:
                    self.python_sources[member.name] = (content, int(member.mtime))
                self.add(member, content)
        if data.wait() != 0:
            raise SystemExit(f"debroot: dpkg-deb could not read {package.deb}")

    @staticmethod
    def _keep(name: str) -> bool:
        return (
            name.startswith("./usr/share/base-passwd/")
            or name.startswith("./usr/share/ca-certificates/")
            or name.startswith("./etc/")
            or name.startswith("./usr/share/base-files/")
            or name == "./usr/share/libc-bin/nsswitch.conf"
        )


def dpkg_database(writer: RootWriter, packages: list[Package], arch: str) -> None:
    """/var/lib/dpkg as dpkg leaves it once every package is installed and configured."""
    entries = []
    for package in packages:
        control = package.control.splitlines()
        status = [control[0], "Status: install ok installed", *control[1:]]
        conffiles = package.members.get("conffiles", b"").decode().split()
        if conffiles:
            status.append("Conffiles:")
            for path in conffiles:
                content = writer.files.get(merged(path.lstrip("/")), b"")
                status.append(f" {path} {hashlib.md5(content).hexdigest()}")  # noqa: S324 (dpkg's format)
        entries.append("\n".join(status) + "\n")
        info = f"./var/lib/dpkg/info/{package.info_name}"
        writer.add_file(f"{info}.list", ("\n".join(package.paths) + "\n").encode())
        for member, content in sorted(package.members.items()):
            executable = member in ("preinst", "postinst", "prerm", "postrm", "config")
            writer.add_file(f"{info}.{member}", content, 0o755 if executable else 0o644)
    writer.add_file("./var/lib/dpkg/status", "\n".join(entries).encode())
    writer.add_file("./var/lib/dpkg/info/format", b"1\n")  # the multiarch layout: libc6:arm64.list
    writer.add_file("./var/lib/dpkg/arch", f"{arch}\n".encode())
    for empty in ("available", "diversions", "statoverride", "triggers/Unincorp"):
        writer.add_file(f"./var/lib/dpkg/{empty}", b"")


def users(writer: RootWriter) -> None:
    """base-passwd's masters, apt's _apt user, and the shadow files shadowconfig would make."""
    passwd = writer.files["./usr/share/base-passwd/passwd.master"].decode()
    passwd += "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
    group = writer.files["./usr/share/base-passwd/group.master"].decode()
    names = [line.split(":")[0] for line in passwd.splitlines() if line]
    groups = [line.split(":")[0] for line in group.splitlines() if line]
    shadow_gid = next(int(line.split(":")[2]) for line in group.splitlines() if line.startswith("shadow:"))
    writer.add_file("./etc/passwd", passwd.encode())
    writer.add_file("./etc/group", group.encode())
    writer.add_file(
        "./etc/shadow", "".join(f"{n}:*:19000:0:99999:7:::\n" for n in names).encode(), 0o640, gid=shadow_gid
    )
    writer.add_file("./etc/gshadow", "".join(f"{g}:*::\n" for g in groups).encode(), 0o640, gid=shadow_gid)


def certificates(writer: RootWriter) -> None:
    """update-ca-certificates: every Mozilla certificate enabled, concatenated into the bundle."""
    prefix = "./usr/share/ca-certificates/"
    certs = sorted(name for name in writer.files if name.startswith(prefix) and name.endswith(".crt"))
    if not certs:
        return
    conf = "# Generated by tests/image/debroot.py: every certificate enabled\n"
    conf += "".join(name.removeprefix(prefix) + "\n" for name in certs)
    writer.add_file("./etc/ca-certificates.conf", conf.encode())
    bundle = b"".join(writer.files[name].rstrip(b"\n") + b"\n" for name in certs)
    writer.add_file("./etc/ssl/certs/ca-certificates.crt", bundle)
    # one link per certificate, and OpenSSL's subject-hash links to those (a CApath directory):
    # `openssl rehash` names them, in one run over a scratch copy
    with tempfile.TemporaryDirectory(prefix="debroot-certs-") as scratch:
        for name in certs:
            pem = name.rsplit("/", 1)[1].removesuffix(".crt") + ".pem"
            Path(scratch, pem).write_bytes(writer.files[name])
            writer.add_symlink(f"./etc/ssl/certs/{pem}", name.removeprefix("."))
        subprocess.run(["openssl", "rehash", scratch], check=True, capture_output=True)
        for link in sorted(Path(scratch).iterdir()):
            if link.is_symlink():
                writer.add_symlink(f"./etc/ssl/certs/{link.name}", os.readlink(link))


def byte_code(writer: RootWriter, minor: str) -> int:
    """py3compile: the standard library's .pyc, in timestamp mode like Debian's own."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != minor:
        log(f"host Python is not {minor}: the image's standard library stays without byte-code")
        return 0
    stdlib = f"./usr/lib/python{minor}/"
    count = 0
    for name, (source, mtime) in sorted(writer.python_sources.items()):
        if not name.startswith(stdlib) or "/site-packages/" in name:
            continue
        directory, _, filename = name.rpartition("/")
        try:
            code = compile(source, name.removeprefix("."), "exec", dont_inherit=True)
        except SyntaxError:
            continue  # py3compile skips these too (lib2to3's test data and the like)
        header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
        header += (mtime & 0xFFFFFFFF).to_bytes(4, "little") + (len(source) & 0xFFFFFFFF).to_bytes(
            4, "little"
        )
        pyc = f"{directory}/__pycache__/{filename[:-3]}.{sys.implementation.cache_tag}.pyc"
        writer.add_file(pyc, header + marshal.dumps(code))
        count += 1
    return count


def base_files(writer: RootWriter) -> None:
    """base-files' postinst: the defaults it copies and the directories it makes."""
    base = "./usr/share/base-files"
    defaults = {
        f"{base}/dot.profile": "./root/.profile",
        f"{base}/dot.bashrc": "./root/.bashrc",
        f"{base}/profile": "./etc/profile",
        f"{base}/motd": "./etc/motd",
        "./usr/share/libc-bin/nsswitch.conf": "./etc/nsswitch.conf",
    }  # fmt: skip (libc-bin's postinst)
    for source, target in defaults.items():
        content = writer.files.get(source)
        if content is not None:
            writer.add_file(target, content)
    for name in ("mnt", "srv", "opt", "etc/opt", "var/opt", "media"):
        writer.add_dir(f"./{name}")
    writer.add_dir("./var/mail", 0o2775, gid=8)  # mail
    writer.add_dir("./run/lock", 0o1777)
    writer.add_symlink("./var/spool/mail", "../mail")
    for name in ("", "/share", "/share/man", "/bin", "/games", "/lib", "/include", "/sbin", "/src", "/etc"):
        writer.add_dir(f"./usr/local{name}")
    writer.add_symlink("./usr/local/man", "share/man")
    for name, mode in (("wtmp", 0o664), ("btmp", 0o660), ("lastlog", 0o664)):
        writer.add_file(f"./var/log/{name}", b"", mode, gid=43)  # utmp
    writer.add_symlink("./etc/dpkg/origins/default", "debian")
    shells = ["/bin/sh", "/bin/bash", "/bin/rbash", "/bin/dash"]
    listed = "".join(f"{shell}\n/usr{shell}\n" for shell in shells if f"./usr{shell}" in writer.seen)
    writer.add_file("./etc/shells", f"# /etc/shells: valid login shells\n{listed}".encode())


_ALTERNATIVE = re.compile(
    r"update-alternatives\s+--install\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)((?:\s+--slave\s+\S+\s+\S+\s+\S+)*)"
)
_SLAVE = re.compile(r"--slave\s+(\S+)\s+(\S+)\s+(\S+)")


def alternatives(writer: RootWriter, packages: list[Package]) -> None:
    """update-alternatives --install, as the postinst scripts call it (the best priority wins)."""
    best: dict[str, tuple[int, str, str, list[tuple[str, str, str]]]] = {}
    for package in packages:
        script = package.members.get("postinst", b"").decode(errors="replace").replace("\\\n", " ")
        for link, name, path, priority, slaves in _ALTERNATIVE.findall(script):
            if "$" in link + name + path:
                continue
            if name not in best or int(priority) > best[name][0]:
                best[name] = (int(priority), link, path, _SLAVE.findall(slaves))
    for name, (priority, link, path, slaves) in sorted(best.items()):
        if merged(path.lstrip("/")) not in writer.seen:
            continue
        admin = ["auto", link]
        for slave_link, slave_name, slave_path in slaves:
            admin += [slave_name, slave_link]
            if merged(slave_path.lstrip("/")) in writer.seen:
                writer.add_symlink(f"./etc/alternatives/{slave_name}", slave_path)
                writer.add_symlink(merged(slave_link.lstrip("/")), f"/etc/alternatives/{slave_name}")
        admin += ["", path, str(priority), *(slave_path for _, _, slave_path in slaves), ""]
        writer.add_file(f"./var/lib/dpkg/alternatives/{name}", ("\n".join(admin) + "\n").encode())
        writer.add_symlink(f"./etc/alternatives/{name}", path)
        writer.add_symlink(merged(link.lstrip("/")), f"/etc/alternatives/{name}")


def configure(writer: RootWriter, packages: list[Package], mirrors: list[str], arch: str) -> None:
    names = {package.name for package in packages}
    users(writer)
    dpkg_database(writer, packages, arch)
    certificates(writer)
    base_files(writer)
    alternatives(writer, packages)
    if "tzdata" in names:
        writer.add_symlink("./etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
        writer.add_file("./etc/timezone", b"Etc/UTC\n")
    writer.add_file("./etc/apt/sources.list", "".join(line + "\n" for line in mirrors).encode())
    for name, target in MIGRATED.items():
        writer.add_symlink(name, target)
    for directory in MERGED:
        if f"./usr/{directory}" in writer.seen:
            writer.add_symlink(f"./{directory}", f"usr/{directory}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="Debian architecture: amd64, arm64, armhf")
    parser.add_argument("--work", required=True, type=Path, help="apt's lists and downloaded packages")
    parser.add_argument("--out", required=True, type=Path, help="the root tarball to write")
    parser.add_argument("--slim", required=True, type=Path, help="dpkg path-exclude/include filters")
    parser.add_argument("--mirror", action="append", required=True, help="a sources.list line")
    parser.add_argument("--no-update", action="store_true", help="use the package lists of the last run")
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args(argv)
    started = time.monotonic()
    packages = download(args.work, args.arch, args.mirror, args.packages, not args.no_update)
    log(f"{args.arch}: {len(packages)} packages resolved and downloaded in {time.monotonic() - started:.0f}s")
    partial = args.out.with_name(args.out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as out:
        writer = RootWriter(out, read_filters(args.slim))
        for package in packages:
            writer.add_package(package)
        configure(writer, packages, args.mirror, args.arch)
        writer.add_file("./etc/dpkg/dpkg.cfg.d/flotilla-slim", args.slim.read_bytes())
        python = [p.name for p in packages if re.fullmatch(r"python3\.\d+-minimal", p.name)]
        compiled = (
            byte_code(writer, python[0].removeprefix("python").removesuffix("-minimal")) if python else 0
        )
    partial.rename(args.out)
    size = args.out.stat().st_size / 1e6
    took = time.monotonic() - started
    log(f"{args.arch}: root {args.out.name} ({size:.0f} MB, {compiled} .pyc) in {took:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
