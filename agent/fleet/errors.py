"""The errors a fleet repo can produce: problems located at ``file:line`` and an unknown cluster."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the fleet repo.

    ``file`` is relative to the repo root (POSIX separators); ``line`` is 1-based, or 0 when the
    problem concerns a whole file or directory rather than a line in it.
    """

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return f"{location}: {self.message}"


class FleetRepoError(Exception):
    """The fleet repo is invalid; ``problems`` lists every problem found, sorted."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        count = len(self.problems)
        first = f": {self.problems[0]}" if self.problems else ""
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"invalid fleet repo{first}{more}")


class UnknownClusterError(LookupError):
    """The fleet repo has no cluster of that name."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known: tuple[str, ...] = tuple(sorted(known))
        super().__init__(name)

    def __str__(self) -> str:
        hint = did_you_mean(self.name, self.known)
        return f"unknown cluster {self.name!r}: no file under clusters/ declares it{hint}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string when none is close."""
    by_folded = {candidate.casefold(): candidate for candidate in sorted(candidates, reverse=True)}
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=1)
    return f" (did you mean {by_folded[matches[0]]!r}?)" if matches else ""


def excerpt(text: str, limit: int = 60, *, quote: bool = True) -> str:
    """A short, escaped rendering of text from the repo, safe to put in a problem message.

    Problem messages go to terminals, logs and the hub: never more than ``limit`` characters of a
    file's content, and never raw control characters.
    """
    shown = repr(text) if quote else repr(text)[1:-1]
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
