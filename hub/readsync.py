"""How a reader process stays exactly as current as the hub's writer.

The writer bumps a counter in shared memory (:class:`CommitCounter`, a memfd both processes map)
after every commit and before it acknowledges the reports in it. A reader process compares that
counter with the value it last caught up to before it answers a request (:class:`Follower`); when
the writer has committed since, it first applies what changed (``Store.changes_since``: on SQLite
the rows with a newer change stamp, on PostgreSQL the rows of newer transactions). So an agent or
a person who was told "accepted" and then reads — on any connection — sees that report, and a
reader costs the writer one 8-byte write per group. Every ``SYNC_SECONDS`` the follower also
polls on its own (the other replicas' commits on PostgreSQL).
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

from hub.replicas import ReplicaSync

_FORMAT = "<Q"
_SIZE = struct.calcsize(_FORMAT)


class CommitCounter:
    """A counter of the writer's commits in memory shared with the reader processes."""

    def __init__(self, fd: int | None = None) -> None:
        """A new counter, or (``fd``) the one another process created and passed down."""
        if fd is None:
            fd = os.memfd_create("flotilla-hub-commits", os.MFD_CLOEXEC)
            os.ftruncate(fd, _SIZE)
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)

    def bump(self) -> None:
        """Called by the one writer only, so read-then-write is safe."""
        struct.pack_into(_FORMAT, self._map, 0, self.value() + 1)

    def value(self) -> int:
        return int(struct.unpack_from(_FORMAT, self._map, 0)[0])

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)


class Follower:
    """A reader process's read model, following the store: exactly before reads, periodically else."""

    def __init__(self, sync: ReplicaSync, counter: CommitCounter) -> None:
        self._sync = sync
        self._counter = counter
        self._lock = threading.Lock()
        self._caught_up = -1  # the first read polls: commits during the load are then applied

    def behind(self) -> bool:
        """True if the writer committed since the last catch-up (cheap: one shared-memory read)."""
        return self._counter.value() != self._caught_up

    def catch_up(self) -> None:
        """Apply everything the writer had committed when this was called (blocking: a read thread)."""
        seen = self._counter.value()
        with self._lock:
            if seen <= self._caught_up:
                return  # another read caught up meanwhile
            self._sync.poll()
            self._caught_up = seen

    def poll(self) -> None:
        """The periodic poll: whatever any writer committed."""
        seen = self._counter.value()
        with self._lock:
            self._sync.poll()
            self._caught_up = max(self._caught_up, seen)

    def close(self) -> None:
        self._sync.close()
        self._counter.close()
