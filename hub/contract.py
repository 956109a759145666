"""The wire contract between agent and hub: the status report and its versions.

Standard library only: the agent imports this module without the hub's web stack.
The agent builds a :class:`StatusReport` and sends ``to_json()``; the hub calls
:func:`parse_report`, which validates, bounds every string and list, and upgrades the previous
contract version (1) to the current one (2).

This module is the contract's public face: the data lives in :mod:`hub.contract_types`, the field
readers in :mod:`hub.contract_fields` and the parsing in :mod:`hub.contract_parse`.
"""

from __future__ import annotations

from hub.contract_parse import check_cluster_name, parse_report, to_v1_dict
from hub.contract_types import (
    BUNDLE_STATES,
    CURRENT_VERSION,
    MAX_BUNDLES,
    MAX_INT,
    MAX_INTERVAL_SECONDS,
    MAX_LABELS,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_PROBLEMS,
    MAX_RESOURCES,
    MAX_SHORT,
    SIGNATURE_STATES,
    SUPPORTED_VERSIONS,
    BundleStatus,
    ContractError,
    ErrorFields,
    Problem,
    ResourceStatus,
    SourceStatus,
    StatusReport,
    cluster_health,
    utc_now_rfc3339,
    worst_state,
)

__all__ = [
    "BUNDLE_STATES",
    "CURRENT_VERSION",
    "MAX_BUNDLES",
    "MAX_INT",
    "MAX_INTERVAL_SECONDS",
    "MAX_LABELS",
    "MAX_MESSAGE",
    "MAX_NAME",
    "MAX_PROBLEMS",
    "MAX_RESOURCES",
    "MAX_SHORT",
    "SIGNATURE_STATES",
    "SUPPORTED_VERSIONS",
    "BundleStatus",
    "ContractError",
    "ErrorFields",
    "Problem",
    "ResourceStatus",
    "SourceStatus",
    "StatusReport",
    "check_cluster_name",
    "cluster_health",
    "parse_report",
    "to_v1_dict",
    "utc_now_rfc3339",
    "worst_state",
]
