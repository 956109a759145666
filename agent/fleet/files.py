"""The only way the fleet package reads the disk: inside the repo, within budget, cached by content.

Git stores symlinks, so a commit can point any path of the repo at any file of the machine the
agent runs on (its ServiceAccount token, its hub token). Every path is therefore checked before it
is read: directories are walked without following symlinks, and a symlink is only followed when
its target resolves inside the repo to a regular file. A symlink loop is a problem, not a
traceback. Sizes are checked on ``stat`` before a byte is read.

:class:`ContentCache` remembers, per path, the ``stat`` signature and a hash of the content last
read there, so that a long-running agent re-reads only the files a commit changed (Git rewrites
exactly those on checkout), and the parsed result of each content, so it parses them once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import operator
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from agent.fleet.errors import Problem
from agent.fleet.limits import DEFAULT, Budget, Limits, size_text
from agent.fleet.yamldoc import Document, parse_bytes

ResultT = TypeVar("ResultT")
_YAML_SUFFIXES = (".yaml", ".yml")
_Signature = tuple[int, int, int, int, int]
Fact = tuple[tuple[str, ...], object]
"""A question a load asked of the disk (``("read", path, kind)``, ...) and the answer it got."""
ChartFile = tuple[str, str, os.stat_result]
"""A file of a local chart: its path relative to the chart, its real path, its ``stat``."""


_NOT_ASKED = object()


def _same(outcome: object) -> object:
    return outcome


class Refused(Exception):
    """A path that must not be read; ``message`` says why, without any of the file's content."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


class ContentCache:
    """What a previous load read and parsed, keyed by path and ``stat`` signature, then by content.

    Entries not used by the latest load are dropped, so memory follows one commit, not history.
    """

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[_Signature, str]] = {}
        self._parsed: dict[tuple[str, str, str], Any] = {}
        self._used_hashes: dict[str, tuple[_Signature, str]] = {}
        self._used_parsed: dict[tuple[str, str, str], Any] = {}

    def content_hash(
        self, path: str, signature: _Signature, read: Callable[[], bytes]
    ) -> tuple[str, bytes | None]:
        known = self._used_hashes.get(path) or self._hashes.get(path)
        if known is not None and known[0] == signature:
            self._used_hashes[path] = known
            return known[1], None
        content = read()
        digest = hashlib.blake2b(content, digest_size=20).hexdigest()
        self._used_hashes[path] = (signature, digest)
        return digest, content

    def parsed(self, key: tuple[str, str, str], compute: Callable[[], ResultT]) -> ResultT:
        if key in self._used_parsed:
            result: ResultT = self._used_parsed[key]
        elif key in self._parsed:
            result = self._parsed[key]
        else:
            result = compute()
        self._used_parsed[key] = result
        return result

    def touch(self, key: tuple[str, str, str]) -> None:
        """Keep ``key`` for the next load, as if it had been used."""
        if key not in self._used_parsed and key in self._parsed:
            self._used_parsed[key] = self._parsed[key]

    def derived(self, source: object, kind: str, compute: Callable[[], ResultT]) -> ResultT:
        """``compute()``, remembered for as long as ``source`` (a cached parse result) is reused."""
        found = self.memo(source, kind)
        if found is None:
            found = (compute(),)
            self.remember(source, kind, found[0])
        result: ResultT = found[0]
        return result

    def memo(self, source: object, kind: str) -> tuple[Any] | None:
        """``(value,)`` remembered for ``source`` under ``kind``, or None."""
        key = (kind, str(id(source)), "")
        entry = self._used_parsed.get(key) or self._parsed.get(key)
        if entry is None or entry[0] is not source:  # ids are reused once an object is gone
            return None
        self._used_parsed[key] = entry
        return (entry[1],)

    def remember(self, source: object, kind: str, value: object) -> None:
        self._used_parsed[(kind, str(id(source)), "")] = (source, value)

    def finish_load(self) -> None:
        """Keep only what the load that just ended used."""
        self._hashes, self._used_hashes = self._used_hashes, {}
        self._parsed, self._used_parsed = self._used_parsed, {}


class RepoFiles:
    """The files of one fleet repo checkout, for one load."""

    def __init__(self, root: str, limits: Limits = DEFAULT, cache: ContentCache | None = None) -> None:
        self.root = os.path.realpath(root)
        self.limits = limits
        self.budget = Budget(limits)
        self.cache = cache if cache is not None else ContentCache()
        self.over_budget = False
        self._charged: set[str] = set()
        self._located: dict[str, tuple[str, str] | Refused] = {}
        self._traces: list[list[Fact]] = []
        self._entries = 0
        self._answers: dict[tuple[str, ...], object] = {}
        self._walked: dict[str, tuple[str, os.stat_result]] = {}
        """Regular files met by a walk (which follows no symlink): inside the repo by construction."""

    def yaml_parser(self, relative: str, content: bytes) -> Document | Problem:
        """Parses a YAML file within this load's limits (pass to :meth:`read`)."""
        return parse_bytes(relative, content, self.limits)

    # ------------------------------------------------------------------------------- tracing

    @contextlib.contextmanager
    def tracing(self) -> Iterator[list[Fact]]:
        """Collect what the code inside looked at (paths located, files' content digests, charts'
        signatures): if :meth:`still_true` holds for them at a later load, its result still holds."""
        facts: list[Fact] = []
        self._traces.append(facts)
        try:
            yield facts
        finally:
            self._traces.pop()
            if self._traces:
                self._traces[-1].extend(facts)

    def replay(self, facts: list[Fact]) -> None:
        """Record ``facts`` into the current trace (a result reused from a memo)."""
        if self._traces:
            self._traces[-1].extend(facts)

    def still_true(self, facts: list[Fact]) -> bool:
        """Whether every question gets the same answer now (each asked once per load)."""
        for question, outcome in facts:
            answer = self._answers.get(question, _NOT_ASKED)
            if answer is _NOT_ASKED:
                try:
                    answer = self._answer(question)
                except Refused as refused:
                    answer = ("refused", refused.message)
                self._answers[question] = answer
            if answer != outcome:
                return False
        return True

    def _answer(self, question: tuple[str, ...]) -> object:
        operation, relative = question[0], question[1]
        if operation == "locate":
            return self._locate_known(relative)
        if operation == "is_dir":
            return self._is_dir(relative)
        if operation == "exists":
            return os.path.lexists(os.path.join(self.root, relative))
        if operation == "read":
            digest = self._digest(relative)[0]
            self.cache.touch((question[2], relative, digest))
            return digest
        return self._chart_signature(relative)[0]

    def _record(self, question: tuple[str, ...], outcome: object) -> None:
        if self._traces:
            self._traces[-1].append((question, outcome))

    def _traced(
        self,
        question: tuple[str, ...],
        answer: Callable[[], ResultT],
        fact: Callable[[ResultT], object] = _same,
    ) -> ResultT:
        """``answer()``, recording ``fact(answer)`` (or the refusal) as the answer to ``question``."""
        try:
            outcome = answer()
        except Refused as refused:
            self._record(question, ("refused", refused.message))
            raise
        self._record(question, fact(outcome))
        return outcome

    # ------------------------------------------------------------------------------- locating

    def locate(self, relative: str) -> tuple[str, str]:
        """(path relative to the root, real absolute path) of an existing path inside the repo."""
        return self._traced(("locate", relative), lambda: self._locate_known(relative))

    def exists(self, relative: str) -> bool:
        """Whether anything (even a dangling symlink) is at ``relative``."""
        return self._traced(("exists", relative), lambda: os.path.lexists(os.path.join(self.root, relative)))

    def _locate_known(self, relative: str) -> tuple[str, str]:
        known = self._located.get(relative)
        if known is None:
            try:
                known = self._locate(relative)
            except Refused as refused:
                known = refused
            self._located[relative] = known
        if isinstance(known, Refused):
            raise known
        return known

    def _locate(self, relative: str) -> tuple[str, str]:
        try:
            real = os.path.realpath(os.path.join(self.root, relative), strict=True)
        except FileNotFoundError:
            raise Refused("no such file or directory", missing=True) from None
        except (OSError, ValueError) as error:
            if isinstance(error, OSError) and error.errno == errno.ELOOP:
                raise Refused("is a symlink loop") from None
            raise Refused(f"cannot be resolved ({type(error).__name__})") from None
        if real != self.root and not real.startswith(self.root + os.sep):
            raise Refused("is, or goes through, a symlink to a path outside the fleet repo; not read")
        return os.path.relpath(real, self.root).replace(os.sep, "/"), real

    def is_dir(self, relative: str) -> bool:
        return self._traced(("is_dir", relative), lambda: self._is_dir(relative))

    def _is_dir(self, relative: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(self._locate_known(relative)[1]).st_mode)
        except (Refused, OSError):
            return False

    def yaml_files(self, folder: str) -> tuple[list[str], list[tuple[str, str]]]:
        """YAML files under ``folder`` (sorted, relative to the root) and (path, why refused) pairs."""
        files: list[str] = []
        refused: list[tuple[str, str]] = []
        for relative, entry in self._walk(folder, refused):
            if entry.name.endswith(_YAML_SUFFIXES):
                files.append(relative)
        return sorted(files), refused

    def regular_file_in(self, directory: str, name: str) -> bool | None:
        """Whether ``directory/name`` (``directory`` found by a walk) is a regular file: True, and
        it is then read without resolving it again; None when nothing is there; False otherwise."""
        relative = f"{directory}/{name}"
        path = os.path.join(self.root, relative)
        try:
            info = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISREG(info.st_mode):
            self._walked[relative] = (path, info)
            return True
        return False

    def subdirectories(self, folder: str) -> tuple[list[str], list[tuple[str, str]]]:
        """Direct subdirectories of ``folder``; symlinks among them are refused (not followed)."""
        found: list[str] = []
        refused: list[tuple[str, str]] = []
        try:
            entries = sorted(os.scandir(os.path.join(self.root, folder)), key=lambda e: e.name)
        except OSError:
            return [], []
        for entry in entries:
            relative = f"{folder}/{entry.name}"
            if entry.is_symlink():
                refused.append((relative, _symlink_reason(self, relative)))
            elif entry.is_dir(follow_symlinks=False):
                found.append(relative)
        return found, refused

    def _walk(self, folder: str, refused: list[tuple[str, str]]) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """Regular files (and symlinks to regular files inside the repo) under ``folder``."""
        try:
            self.locate(folder)
        except Refused as why:
            if os.path.lexists(os.path.join(self.root, folder)):
                refused.append((folder, why.message))
            return
        pending = [folder]
        while pending:
            current = pending.pop()
            try:
                entries = list(os.scandir(os.path.join(self.root, current)))
            except OSError as error:
                refused.append((current, f"cannot be listed ({error.strerror})"))
                continue
            self._entries += len(entries)
            if self._entries > self.limits.max_files:
                self.over_budget = True
                refused.append((current, f"listing it passes the limit of {self.limits.max_files} files and "
                                "directories per load of the fleet repo"))  # fmt: skip
                return
            for entry in entries:
                relative = f"{current}/{entry.name}"
                if entry.is_symlink():
                    reason = _symlink_reason(self, relative)
                    if reason:
                        refused.append((relative, reason))
                    else:
                        yield relative, entry
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(relative)
                elif entry.is_file(follow_symlinks=False):
                    self._walked[relative] = (entry.path, entry.stat(follow_symlinks=False))
                    yield relative, entry
                else:  # a FIFO, socket or device: reading it could block or never end
                    refused.append((relative, "is not a regular file or directory; not read"))

    # -------------------------------------------------------------------------------- reading

    def read(self, relative: str, kind: str, parse: Callable[[str, bytes], ResultT]) -> ResultT:
        """``parse(relative, content)`` of a file inside the repo, cached by its content.

        Raises :class:`Refused` for a file outside the repo, not regular, too big, or past the
        repo's total budget.
        """
        digest, real, info, content = self._traced(
            ("read", relative, kind), lambda: self._digest(relative), operator.itemgetter(0)
        )

        def compute() -> ResultT:
            return parse(relative, content if content is not None else self._read_bytes(real, info.st_size))

        return self.cache.parsed((kind, relative, digest), compute)

    def _digest(self, relative: str) -> tuple[str, str, os.stat_result, bytes | None]:
        """The content digest, real path and ``stat`` of a file, and its bytes if it had to be read."""
        walked = self._walked.get(relative)
        if walked is None:
            real = self._locate_known(relative)[1]
            info = self._regular_stat(real)
        else:
            real, info = walked
            self._check_size(info)
        self._charge(info.st_size, relative)
        digest, content = self.cache.content_hash(
            relative, _signature(info), lambda: self._read_bytes(real, info.st_size)
        )
        return digest, real, info, content

    def _regular_stat(self, real: str) -> os.stat_result:
        info = os.stat(real)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("is not a regular file")
        self._check_size(info)
        return info

    def _check_size(self, info: os.stat_result) -> None:
        if info.st_size > self.limits.max_file_bytes:
            raise Refused(
                f"is {info.st_size} bytes, which exceeds the limit of "
                f"{size_text(self.limits.max_file_bytes)} per file"
            )

    def _charge(self, size: int, path: str) -> None:
        """Count a file against the repo's budget, once per load however often it is listed."""
        if path in self._charged:
            return
        self._charged.add(path)
        if not self.budget.take(size):
            self.over_budget = True
            raise Refused(
                f"reading it would exceed the limit of {size_text(self.limits.max_repo_bytes)} "
                "read per load of the fleet repo"
            )

    def _read_bytes(self, real: str, expected: int) -> bytes:
        with open(real, "rb") as stream:
            content = stream.read(self.limits.max_file_bytes + 1)
        if len(content) > self.limits.max_file_bytes:
            raise Refused(f"exceeds the limit of {size_text(self.limits.max_file_bytes)} per file")
        return content

    # ----------------------------------------------------------------------------- local charts

    def chart_files(self, chart_dir: str) -> list[ChartFile]:
        """(path relative to the chart, real path, stat) of every file of a local chart, sorted.

        Every file is checked, because helm is handed this very directory: a symlink must resolve
        to a regular file inside the repo, and the chart must fit its file and byte limits.
        """
        refused: list[tuple[str, str]] = []
        result: list[ChartFile] = []
        total = 0
        for relative, _entry in self._walk(chart_dir, refused):
            if len(result) >= self.limits.max_chart_files:
                raise Refused(f"has more than {self.limits.max_chart_files} files, the limit for a chart")
            _, real = self.locate(relative)
            info = os.stat(real)
            if not stat.S_ISREG(info.st_mode):
                raise Refused(f"file {relative} is not a regular file")
            total += info.st_size
            if total > self.limits.max_chart_bytes:
                raise Refused(f"exceeds the limit of {size_text(self.limits.max_chart_bytes)} for a chart")
            result.append((relative[len(chart_dir) + 1 :], real, info))
        if refused:
            path, why = sorted(refused)[0]
            raise Refused(f"file {path} {why}")
        self._charge(total, chart_dir + "/")
        return sorted(result, key=lambda item: item[0])

    def chart_digest(self, chart_dir: str, compute: Callable[[list[ChartFile]], str]) -> str:
        """``compute(files)`` for the chart's files, remembered while none of them changes."""
        signature, files = self._traced(
            ("chart", chart_dir), lambda: self._chart_signature(chart_dir), operator.itemgetter(0)
        )
        return self.cache.parsed(("chart", chart_dir, signature), lambda: compute(files))

    def _chart_signature(self, chart_dir: str) -> tuple[str, list[ChartFile]]:
        files = self.chart_files(chart_dir)
        key = repr([(name, _signature(info)) for name, _, info in files])
        signature = hashlib.blake2b(key.encode(), digest_size=20).hexdigest()
        self.cache.touch(("chart", chart_dir, signature))
        return signature, files


def _symlink_reason(files: RepoFiles, relative: str) -> str:
    """Why a symlink must not be followed, or an empty string for a link to a regular file inside."""
    try:
        _, real = files.locate(relative)
    except Refused as why:
        if "outside" in why.message:
            return "is a symlink to a path outside the fleet repo; not read"
        if "loop" in why.message:
            return "is a symlink loop"
        return f"is a symlink that cannot be followed ({why.message})"
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            return "is a symlink to something other than a regular file; not followed"
    except OSError:
        return "is a symlink that cannot be followed"
    return ""


def _signature(info: os.stat_result) -> _Signature:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev)
