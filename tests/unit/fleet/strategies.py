"""Hypothesis strategies for fleet-repo-shaped data: field names that matter, awkward values."""

from __future__ import annotations

from hypothesis import strategies as st

FIELD_NAMES = st.sampled_from(
    ["name", "namespace", "chart", "path", "repo", "oci", "version", "values", "valuesFiles", "valuesFrom",
     "targets", "clusterName", "clusterSelector", "clusterGroup", "matchLabels", "matchExpressions", "key",
     "operator", "dependsOn", "paused", "helm", "timeoutSeconds", "kind", "labels", "x"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["web", "base", "../../charts/app", "../..", "In", "Exists", "^1.0", "eu-1", "arm"]),
    st.just("nul\x00byte"),
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=5),
    max_leaves=25,
)
