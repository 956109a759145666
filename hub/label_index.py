"""The label and cause indexes of the read model: which clusters carry each label value, and which
fail the same way (share a cause), for label selectors and for grouping by label and by cause.

Not thread-safe by itself: :class:`hub.readmodel.ReadModel` holds its lock around every call.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.model import ClusterSummary


class LabelIndex:
    def __init__(self, summaries: Iterable[ClusterSummary] = ()) -> None:
        self._labels: dict[str, dict[str, set[str]]] = {}
        self._causes: dict[str, set[str]] = {}
        labelled: dict[tuple[str, str], list[str]] = {}  # the label index, built in bulk
        for summary in summaries:
            name = summary.name
            for pair in summary.labels.items():
                found = labelled.get(pair)
                if found is None:
                    labelled[pair] = [name]
                else:
                    found.append(name)
            if summary.cause:
                self._causes.setdefault(summary.cause, set()).add(name)
        for (key, value), names in labelled.items():
            self._labels.setdefault(key, {})[value] = set(names)

    def update(self, summary: ClusterSummary, *, add: bool) -> None:
        """Add ``summary``'s cluster under its labels and its cause, or (``add=False``) take it out."""
        name = summary.name
        for key, value in summary.labels.items():
            values = self._labels.setdefault(key, {})
            members = values.setdefault(value, set())
            if add:
                members.add(name)
            else:
                members.discard(name)
                if not members:
                    del values[value]
                    if not values:
                        del self._labels[key]
        if summary.cause:
            causes = self._causes.setdefault(summary.cause, set())
            if add:
                causes.add(name)
            else:
                causes.discard(name)
                if not causes:
                    del self._causes[summary.cause]

    def label_set(self, key: str, value: str | None) -> set[str]:
        """A copy of the names with label ``key`` set to ``value`` (or to anything, for None)."""
        values = self._labels.get(key, {})
        if value is not None:
            return set(values.get(value, ()))
        return set().union(*values.values())

    def label_counts(self, key: str) -> dict[str, int]:
        """How many clusters carry each value of label ``key``."""
        return {value: len(names) for value, names in self._labels.get(key, {}).items()}

    def cause_sizes(self) -> list[tuple[str, int]]:
        """Each cause of trouble and how many clusters share it, in no particular order."""
        return [(cause, len(names)) for cause, names in self._causes.items()]
