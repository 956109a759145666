"""Helm release records, decoded from the Secrets Helm stores them in (pure).

Reading the storage Secrets (one LIST call for every release and revision in the cluster) instead
of running ``helm list``/``helm get`` per release keeps a no-change pass to a few API reads.  The
format is Helm's storage driver format (``sh.helm.release.v1``): the Secret's ``data.release`` is
base64 (by the API) of base64 (by Helm) of gzip of the release JSON.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

OWNER_LABEL = "flotilla.dev/owner"
OWNER_VALUE = "flotilla"
DIGEST_LABEL = "flotilla.dev/digest"
BUNDLE_LABEL = "flotilla.dev/bundle"
CLUSTER_LABEL = "flotilla.dev/cluster"
COMMIT_LABEL = "flotilla.dev/commit"
TIMEOUT_LABEL = "flotilla.dev/timeout"  # the --timeout (seconds) the revision was applied with
PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
# libyaml's loader when PyYAML was built with it (the wheels are): manifests are parsed every pass.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def digest_label(digest: str) -> str:
    """Label values are at most 63 characters: 40 hex digits of a sha256 are plenty to compare."""
    return digest[:40]


@dataclass(frozen=True)
class ReleaseRecord:
    """One revision of one Helm release."""

    name: str
    namespace: str
    revision: int
    status: str
    chart_name: str = ""
    chart_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    manifest: str = ""
    description: str = ""
    started_at: float | None = None  # when the helm that wrote this revision began (seconds, epoch)

    @functools.cached_property
    def objects(self) -> tuple[dict[str, Any], ...]:
        """The objects of this revision's manifest (parsed once per record)."""
        return tuple(manifest_objects(self.manifest, self.namespace))

    @property
    def owned(self) -> bool:
        return self.labels.get(OWNER_LABEL) == OWNER_VALUE

    @property
    def digest(self) -> str:
        return self.labels.get(DIGEST_LABEL, "")

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    def timeout_seconds(self, default: int) -> int:
        """The ``--timeout`` this revision was applied with, when the agent recorded it."""
        value = self.labels.get(TIMEOUT_LABEL, "")
        return int(value) if value.isdigit() else default


class ReleaseDecodeError(ValueError):
    pass


def decode_release_secret(secret: Mapping[str, Any]) -> ReleaseRecord:
    metadata = secret.get("metadata") or {}
    labels = dict(metadata.get("labels") or {})
    try:
        payload = base64.b64decode((secret.get("data") or {})["release"])
        document = json.loads(gzip.decompress(base64.b64decode(payload)))
    except (KeyError, ValueError, OSError) as error:
        raise ReleaseDecodeError(
            f"Secret {metadata.get('namespace')}/{metadata.get('name')}: {error}"
        ) from None
    info = document.get("info") or {}
    chart_metadata = (document.get("chart") or {}).get("metadata") or {}
    return ReleaseRecord(
        name=str(document.get("name") or labels.get("name", "")),
        namespace=str(document.get("namespace") or metadata.get("namespace", "")),
        revision=int(document.get("version") or labels.get("version") or 0),
        status=str(info.get("status") or labels.get("status", "unknown")),
        chart_name=str(chart_metadata.get("name", "")),
        chart_version=str(chart_metadata.get("version", "")),
        labels=labels,
        manifest=str(document.get("manifest") or ""),
        description=str(info.get("description") or ""),
        started_at=_started_at(labels, info),
    )


def _started_at(labels: Mapping[str, str], info: Mapping[str, Any]) -> float | None:
    """Helm's storage label ``createdAt`` (unix seconds, set when the revision is first stored), else
    the release's ``info.last_deployed``."""
    created = str(labels.get("createdAt", ""))
    if created.isdigit():
        return float(created)
    deployed = info.get("last_deployed")
    if isinstance(deployed, str) and deployed:
        try:
            return datetime.fromisoformat(deployed.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class ReleaseHistory:
    """All decoded revisions of one release, newest last."""

    revisions: tuple[ReleaseRecord, ...]

    @property
    def current(self) -> ReleaseRecord:
        return self.revisions[-1]

    def last_deployed(self, *, before: int | None = None) -> ReleaseRecord | None:
        for record in reversed(self.revisions):
            if record.status in ("deployed", "superseded") and (before is None or record.revision < before):
                return record
        return None


def group_releases(secrets: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], ReleaseHistory]:
    """(namespace, name) → history, from the storage Secrets; undecodable records are skipped."""
    grouped: dict[tuple[str, str], list[ReleaseRecord]] = {}
    for secret in secrets:
        try:
            record = decode_release_secret(secret)
        except ReleaseDecodeError:
            continue
        grouped.setdefault((record.namespace, record.name), []).append(record)
    return {
        key: ReleaseHistory(tuple(sorted(records, key=lambda r: r.revision)))
        for key, records in grouped.items()
    }


def manifest_objects(manifest: str, namespace: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest; ``namespace`` fills in objects that name none."""
    objects: list[dict[str, Any]] = []
    for document in yaml.load_all(manifest, Loader=_SAFE_LOADER):
        if not isinstance(document, dict) or not document.get("kind"):
            continue
        if document.get("kind", "").endswith("List") and isinstance(document.get("items"), list):
            objects.extend(item for item in document["items"] if isinstance(item, dict))
            continue
        objects.append(document)
    for obj in objects:
        obj.setdefault("metadata", {})
        obj["metadata"].setdefault("namespace", namespace)
    return objects
