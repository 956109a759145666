"""The only module that talks to the Kubernetes API.

Built on lightkube rather than the official client: the official client imports ~800 model modules
(61 MiB RSS and seconds of start-up on an edge node) where lightkube loads only the kinds we touch.
Everything returned is plain JSON-like data (dicts), so the rules in ``health`` and ``drift`` stay
pure.  Every write goes through :meth:`Kube.apply` and is counted, which lets a pass prove it wrote
nothing when nothing changed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import structlog
from lightkube import ApiError, Client, KubeConfig, codecs
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource import NamespacedResource
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import load_in_cluster_generic_resources

log = structlog.get_logger(__name__)

FIELD_MANAGER = "flotilla"
# Helm 4's CLI applies every object server-side as field manager "helm" (cmd/helm sets
# kube.ManagedFieldsManager).  Drift is corrected under the same name, so the fields stay Helm's and
# its next upgrade (server-side apply without --force-conflicts) finds no foreign owner to conflict with.
HELM_FIELD_MANAGER = "helm"
HELM_OWNER_SELECTOR: dict[str, Any] = {"owner": "helm"}


class KubeError(RuntimeError):
    """The API server could not be reached or refused a request; the message says which."""


class KubeConflict(KubeError):
    """A write lost a race: the object changed (or appeared) since it was read."""


ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace ("" for cluster-scoped), name


def object_key(obj: Mapping[str, Any], default_namespace: str = "") -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or default_namespace),
        str(metadata.get("name", "")),
    )


@dataclass
class Kube:
    """A connection to one cluster's API server."""

    client: Client
    writes: int = 0
    server: str = ""  # the API server's URL, for messages
    # When set, the only namespaces the agent may touch: lists go per namespace, never cluster-wide.
    namespaces: tuple[str, ...] | None = None
    _unknown_kinds: set[tuple[str, str]] = field(default_factory=set)
    _crds_loaded: bool = False
    # Kinds a LIST answered 404 for this pass (a CRD removed from the cluster): (apiVersion, kind).
    unserved: set[tuple[str, str]] = field(default_factory=set)

    def forget_discovery(self) -> None:
        """Look kinds up afresh: called at the start of a pass and after helm changed the cluster
        (a chart may have installed or removed CRDs), so a long-running agent sees new CRDs."""
        self._unknown_kinds.clear()
        self._crds_loaded = False
        self.unserved.clear()

    @classmethod
    def connect(cls, kubeconfig: Path | None) -> Kube:
        """From a kubeconfig file, or from the pod's service account when ``kubeconfig`` is None."""
        try:
            config = (
                KubeConfig.from_file(str(kubeconfig)) if kubeconfig else KubeConfig.from_service_account()
            )
            single = config.get()
            server = str(single.cluster.server) if single is not None and single.cluster is not None else ""
            client = Client(config=config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(30.0))
            return cls(client, server=server)
        except Exception as error:  # lightkube raises several types for a bad config
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster service account"
            raise KubeError(f"cannot load {where}: {error}") from None

    # ---------------------------------------------------------------- reads

    def helm_release_secrets(self, namespace: str = "*", release: str | None = None) -> list[dict[str, Any]]:
        """Helm release records (all revisions) as Secret dicts: one LIST call.

        By default every release in every namespace; with ``namespace`` and ``release``, only that one.
        """
        secret = self._resource("v1", "Secret")
        assert secret is not None
        labels = dict(HELM_OWNER_SELECTOR)
        if release is not None:
            labels["name"] = release
        scopes = [namespace] if namespace != "*" or self.namespaces is None else list(self.namespaces)
        return [
            self._to_dict(item)
            for scope in scopes
            for item in self._call(
                lambda scope=scope: list(self.client.list(secret, namespace=scope, labels=labels)),
                f"list Helm release secrets{'' if scope == '*' else ' in namespace ' + scope}",
            )
        ]

    def read_value(self, kind: str, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret or ConfigMap as text; None when the object or the key is missing."""
        resource = self._resource("v1", kind)
        assert resource is not None
        try:
            obj = self._to_dict(self.client.get(resource, name, namespace=namespace))
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise KubeError(f"cannot read {kind} {namespace}/{name}: {error.status.message}") from None
        except httpx2.HTTPError as error:
            raise KubeError(f"cannot read {kind} {namespace}/{name}: {error}") from None
        if kind == "Secret":
            encoded = (obj.get("data") or {}).get(key)
            return None if encoded is None else base64.b64decode(encoded).decode()
        value = (obj.get("data") or {}).get(key)
        return None if value is None else str(value)

    def live_objects(self, wanted: Iterable[ObjectKey]) -> dict[ObjectKey, dict[str, Any] | None]:
        """The live state of each wanted object, None when absent.

        One LIST per (apiVersion, kind), cluster-wide, instead of one GET per object: a pass over
        100 releases costs a handful of calls.
        """
        by_type: dict[tuple[str, str], set[ObjectKey]] = {}
        for key in wanted:
            by_type.setdefault((key[0], key[1]), set()).add(key)
        result: dict[ObjectKey, dict[str, Any] | None] = {}
        for (api_version, kind), keys in sorted(by_type.items()):
            resource = self._resource(api_version, kind)
            if resource is None:
                for key in keys:
                    result[key] = None
                continue
            namespaced = _is_namespaced(resource)
            namespaces = {key[2] for key in keys} if namespaced else {""}
            restricted = self.namespaces is not None
            scopes = sorted(namespaces) if len(namespaces) == 1 or restricted else ["*"]
            try:
                items = [
                    item
                    for scope in scopes
                    for item in self._call(
                        lambda resource=resource, scope=scope, namespaced=namespaced: list(
                            self.client.list(resource, namespace=scope)
                            if namespaced
                            else self.client.list(resource)
                        ),
                        f"list {kind}",
                        not_found_ok=True,
                    )
                ]
            except _NotServed:
                self.unserved.add((api_version, kind))
                log.warning("kind_not_served", api_version=api_version, kind=kind)
                for key in keys:
                    result[key] = None
                continue
            found = {object_key(d): d for d in map(self._to_dict, items)}
            for key in keys:
                lookup = key if namespaced else (key[0], key[1], "", key[3])
                result[key] = found.get(lookup)
        return result

    # ---------------------------------------------------------------- writes

    def apply(self, obj: Mapping[str, Any], namespace: str, *, field_manager: str = FIELD_MANAGER) -> None:
        """Server-side apply of one manifest object, taking ownership of conflicting fields (force)."""
        api_version, kind, _, name = object_key(obj)
        resource = self._resource(api_version, kind)
        if resource is None:
            raise KubeError(f"cannot apply {kind} {name}: the API server does not serve {api_version}/{kind}")
        body = dict(obj)
        metadata = dict(body.get("metadata") or {})
        if _is_namespaced(resource):
            metadata.setdefault("namespace", namespace)
        else:
            metadata.pop("namespace", None)
        body["metadata"] = metadata
        self.writes += 1
        self._call(
            lambda: self.client.apply(  # type: ignore[call-overload]
                codecs.from_dict(body),
                name=name,
                namespace=metadata.get("namespace"),
                field_manager=field_manager,
                force=True,
            ),
            f"apply {kind} {metadata.get('namespace', '')}/{name}",
        )

    # ---------------------------------------------------------------- helpers

    def _resource(self, api_version: str, kind: str) -> Any:
        if (api_version, kind) in self._unknown_kinds:
            return None
        resource = resource_registry.get(api_version, kind)
        if resource is not None:
            return resource
        try:
            return resource_registry.load(api_version, kind)
        except (LoadResourceError, ModuleNotFoundError, ImportError):
            pass
        if not self._crds_loaded:
            self._crds_loaded = True
            try:
                load_in_cluster_generic_resources(self.client)
            except (ApiError, httpx2.HTTPError) as error:
                log.warning("crd_discovery_failed", error=str(error))
            resource = resource_registry.get(api_version, kind)
            if resource is not None:
                return resource
        self._unknown_kinds.add((api_version, kind))
        return None

    # ---------------------------------------------------------------- the agent's lease

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A coordination.k8s.io Lease as a dict, None when it does not exist."""
        from lightkube.resources.coordination_v1 import Lease

        what = f"read Lease {namespace}/{name}"
        try:
            found = self._call(
                lambda: self.client.get(Lease, name, namespace=namespace), what, not_found_ok=True
            )
        except _NotServed:
            return None
        return self._to_dict(found)

    def write_lease(self, body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
        """Create, or replace (optimistically: ``metadata.resourceVersion`` must still be current)."""
        metadata = body.get("metadata") or {}
        where = f"Lease {metadata.get('namespace')}/{metadata.get('name')}"
        self.writes += 1
        try:
            obj = codecs.from_dict(dict(body))
            written = self.client.create(obj) if create else self.client.replace(obj)
        except ApiError as error:
            if error.status.code == 409:
                raise KubeConflict(f"cannot write {where}: {error.status.message}") from None
            raise KubeError(f"cannot write {where}: {error.status.message}") from None
        except httpx2.HTTPError as error:
            raise KubeError(f"cannot write {where}: API server unreachable ({error})") from None
        return self._to_dict(written)

    def _call(self, action: Any, what: str, *, not_found_ok: bool = False) -> Any:
        try:
            return action()
        except ApiError as error:
            if not_found_ok and error.status.code == 404:
                raise _NotServed(what) from None
            raise KubeError(f"cannot {what}: {error.status.message}") from None
        except httpx2.HTTPStatusError as error:  # an answer that is not a Kubernetes Status
            code = error.response.status_code
            if not_found_ok and code == 404:  # e.g. the kind's CRD was removed: "404 page not found"
                raise _NotServed(what) from None
            raise KubeError(f"cannot {what}: the API server answered HTTP {code}") from None
        except httpx2.HTTPError as error:
            raise KubeError(f"cannot {what}: API server {self.server} unreachable ({error})") from None

    @staticmethod
    def _to_dict(obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            return obj
        converted = obj.to_dict()
        return dict(converted)


class _NotServed(Exception):
    """A LIST answered 404: the API server does not serve the kind (its CRD is gone)."""


def _is_namespaced(resource: Any) -> bool:
    return isinstance(resource, type) and issubclass(resource, NamespacedResource)
