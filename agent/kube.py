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
HELM_OWNER_SELECTOR: dict[str, Any] = {"owner": "helm"}


class KubeError(RuntimeError):
    """The API server could not be reached or refused a request; the message says which."""


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
    _unknown_kinds: set[tuple[str, str]] = field(default_factory=set)
    _crds_loaded: bool = False

    @classmethod
    def connect(cls, kubeconfig: Path | None) -> Kube:
        """From a kubeconfig file, or from the pod's service account when ``kubeconfig`` is None."""
        try:
            config = (
                KubeConfig.from_file(str(kubeconfig)) if kubeconfig else KubeConfig.from_service_account()
            )
            return cls(Client(config=config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(30.0)))
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
        return [
            self._to_dict(item)
            for item in self._call(
                lambda: list(self.client.list(secret, namespace=namespace, labels=labels)),
                "list Helm release secrets",
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
            scope = "*" if len(namespaces) > 1 else next(iter(namespaces))
            items = self._call(
                lambda resource=resource, scope=scope, namespaced=namespaced: list(
                    self.client.list(resource, namespace=scope) if namespaced else self.client.list(resource)
                ),
                f"list {kind}",
            )
            found = {object_key(d): d for d in map(self._to_dict, items)}
            for key in keys:
                lookup = key if namespaced else (key[0], key[1], "", key[3])
                result[key] = found.get(lookup)
        return result

    # ---------------------------------------------------------------- writes

    def apply(self, obj: Mapping[str, Any], namespace: str) -> None:
        """Server-side apply of one manifest object, taking ownership of conflicting fields."""
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
                codecs.from_dict(body), name=name, namespace=metadata.get("namespace"), force=True
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

    def _call(self, action: Any, what: str) -> Any:
        try:
            return action()
        except ApiError as error:
            raise KubeError(f"cannot {what}: {error.status.message}") from None
        except httpx2.HTTPError as error:
            raise KubeError(f"cannot {what}: API server unreachable ({error})") from None

    @staticmethod
    def _to_dict(obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            return obj
        converted = obj.to_dict()
        return dict(converted)


def _is_namespaced(resource: Any) -> bool:
    return isinstance(resource, type) and issubclass(resource, NamespacedResource)
