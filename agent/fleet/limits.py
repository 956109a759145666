"""The budget every fleet repo input is held to, so that one commit cannot exhaust an agent.

Anyone who can commit to the fleet repo can write any bytes into it. The loader that ``validate``,
``plan`` and the agent share refuses, with a ``path:line`` problem, anything past these limits
*before* spending memory on it: a file is measured before it is read, YAML aliases are counted as
they are met (never expanded first), nesting is counted event by event. The defaults are far above
what a real fleet uses and far below what the agent's 256 MiB memory limit allows; the table in
fleet-repo-example/README.md ("Limits") lists them.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1024 * 1024
    """Any one YAML file (cluster, group, bundle, values file, Chart.yaml)."""
    max_repo_bytes: int = 64 * 1024 * 1024
    """Everything the loader reads in one load: YAML files and local chart files together."""
    max_files: int = 100_000
    """Files and directories listed in one load (under clusters/, groups/, bundles/ and charts)."""
    max_chart_bytes: int = 8 * 1024 * 1024
    """All files of one local chart together (Helm itself refuses charts past a few MiB)."""
    max_chart_files: int = 2000
    """Files of one local chart."""
    max_nodes: int = 100_000
    """Values (mappings, lists, scalars) in one document, counting every alias as expanded."""
    max_aliases: int = 1000
    """Alias uses (``*name``) in one document."""
    max_depth: int = 64
    """Nesting of mappings and lists in one document."""
    max_int_digits: int = 64
    """Digits of one integer."""
    max_scalar_bytes: int = 256 * 1024
    """One string, key or number."""
    max_problems_per_file: int = 20
    """Problems reported for one file; the rest are counted in one more problem."""
    max_values_bytes: int = 1024 * 1024
    """The merged values of one release, as JSON: Helm stores a release in one Secret (1 MiB)."""


DEFAULT = Limits()


def size_text(count: int) -> str:
    """``1 MiB``, ``64 KiB``, ``512 bytes``: limits read as people write them."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


class Budget:
    """The bytes one load may still read; shared by every file of the load."""

    def __init__(self, limits: Limits = DEFAULT) -> None:
        self.limits = limits
        self.read = 0

    def take(self, count: int) -> bool:
        """Reserve ``count`` bytes; False (and nothing reserved) once the repo total would pass."""
        if self.read + count > self.limits.max_repo_bytes:
            return False
        self.read += count
        return True
