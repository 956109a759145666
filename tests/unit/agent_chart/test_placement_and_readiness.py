"""Placement flags of ``manifests`` (nodeSelector, tolerations, resources) are parsed or refused with a
message naming the value; the readiness rule is Ready only for a pass completed by this pod's live agent."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent import placement, readiness
from agent.cli import build_parser
from agent.manifests import build_manifests
from agent.manifests_cli import options_from_args


def test_flags_reach_the_pod_spec() -> None:
    args = build_parser().parse_args(
        [
            "manifests", "--cluster", "c", "--repo", "https://x/r.git",
            "--node-selector", "kubernetes.io/arch=arm64,edge=true",
            "--toleration", "edge=arm:NoSchedule", "--toleration", "dedicated:NoExecute",
            "--cpu-request", "0.1", "--memory-limit", "1Gi",
        ]
    )  # fmt: skip
    deployment = build_manifests(options_from_args(args))[-1]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64", "edge": "true"}
    assert pod["tolerations"] == [
        {"key": "edge", "operator": "Equal", "value": "arm", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    ]
    resources = pod["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "0.1", "memory": "96Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    assert pod["containers"][0]["readinessProbe"]["exec"]["command"] == ["flotilla-agent", "ready"]


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (placement.toleration, "edge=arm"),
        (placement.toleration, "edge=arm:Sometimes"),
        (placement.toleration, "bad key!:NoSchedule"),
        (placement.node_selector, "arch"),
        (placement.node_selector, "arch=arm 64"),
        (placement.node_selector, ","),
        (placement.cpu_quantity, "lots"),
        (placement.memory_quantity, "96MB"),
    ],
)
def test_bad_flag_values_are_refused_naming_them(parse: object, value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=value.replace("(", r"\(")[:4]):
        parse(value)  # type: ignore[operator]


def test_ready_only_for_a_pass_by_this_pod_and_a_live_agent() -> None:
    record = {"host": "agent-abc", "pid": 7, "commit": "0" * 40}
    assert readiness.is_ready(None, "agent-abc", True) == (False, "no completed pass yet")
    assert readiness.is_ready(record, "agent-abc", True)[0]
    assert not readiness.is_ready(record, "agent-new", True)[0]  # the old pod's file on a shared volume
    assert not readiness.is_ready(record, "agent-abc", False)[0]  # a restarted container


def test_mark_clear_and_check_through_the_state_directory(tmp_path: Path) -> None:
    assert not readiness.check(tmp_path)[0]
    readiness.mark(tmp_path, "abc")
    ok, why = readiness.check(tmp_path)
    assert ok
    assert "abc" in why
    readiness.clear(tmp_path)
    assert not readiness.check(tmp_path)[0]
