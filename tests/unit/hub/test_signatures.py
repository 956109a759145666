"""Error signatures: what varies between clusters goes, what the error says stays."""

from __future__ import annotations

import pytest

from hub.contract import ResourceStatus
from hub.signatures import MAX_PROBLEMS, normalise, problems_of, signature_id
from tests.unit.hub.factory import make_bundle, make_report


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("timeout after 30s", "timeout after 45s", id="numbers"),
        pytest.param("pull web:2.4.1 failed", "pull web:2.10.0 failed", id="versions are one number"),
        pytest.param("commit a1b2c3d4e5 missing", "commit 9f8e7d6c5b missing", id="commit ids"),
        pytest.param("digest sha256:00aa11 bad", "digest sha256:ffee99 bad", id="digests"),
        pytest.param(
            "pod web-7d4b9c8f6d-x2k9p crashed", "pod web-5c6b7a8f9d-q8w7e crashed", id="generated pod names"
        ),
        pytest.param("dial tcp 10.0.0.7:443: refused", "dial tcp 192.168.1.20:8443: refused", id="IPv4"),
        pytest.param("dial tcp [fd00::1]:443: refused", "dial tcp [2001:db8::7]:443: refused", id="IPv6"),
        pytest.param(
            "no such host registry.eu-west.example", "no such host registry.us-east.example", id="host names"
        ),
        pytest.param(
            'configmap "store-12-cfg" not found', 'configmap "store-99-x" not found', id="quoted names"
        ),
        pytest.param(
            "id 0b9c6a4e-3f1d-4c2b-9a8e-7d6c5b4a3f21 gone",
            "id 11111111-2222-3333-4444-555555555555 gone",
            id="uuid",
        ),
        pytest.param("  first line\nsecond 1", "first line\nother detail", id="first line only"),
        pytest.param("a   b\tc", "a b c", id="whitespace"),
    ],
)
def test_varying_parts_are_stripped(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


def test_the_cluster_name_is_stripped_wherever_it_appears() -> None:
    assert (
        normalise("helm failed on store-eu-7 (store-eu-7)", "store-eu-7")
        == "helm failed on <cluster> (<cluster>)"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("pull image: timeout", "pull image: unauthorized", id="different words"),
        pytest.param("deployments.apps web", "statefulsets.apps web", id="kinds with a group"),
        pytest.param("values.yaml: bad", "Chart.yaml: bad", id="file names"),
        pytest.param("facade broken", "decade broken", id="hex-looking words without digits"),
    ],
)
def test_what_the_error_says_is_kept(a: str, b: str) -> None:
    assert normalise(a) != normalise(b)


def test_signatures_are_bounded_and_ids_stable() -> None:
    assert len(normalise("x" * 10_000)) == 200
    assert normalise("") == ""
    assert signature_id("a") == signature_id("a") != signature_id("b")
    assert len(signature_id("a")) == 16


def test_problems_of_a_report_by_signature_with_the_original_as_example() -> None:
    crash = ResourceStatus(
        "Pod", "apps", "web-7d4b9c8f6d-x2k9p", "CrashLoopBackOff", "back-off 5m0s restarting"
    )
    report = make_report(
        "edge-3",
        1,
        [
            make_bundle("web", "Failed", message="timeout after 30s on edge-3", non_ready=[crash, crash]),
            make_bundle("db", "Ready", message="ignored: the bundle is Ready"),
            make_bundle("cache", "Degraded", message=""),
        ],
        source_error="git fetch: exit status 128",
    )
    problems = problems_of(report)
    assert [p.signature for p in problems] == [
        "source: git fetch: exit status #",
        "Failed web: timeout after #s on <cluster>",
        "Failed web Pod: back-off #m#s restarting",
    ]
    assert [p.bundle for p in problems] == ["", "web", "web"]
    assert problems[1].example == "timeout after 30s on edge-3"


def test_problems_are_bounded_per_cluster() -> None:
    bundles = [make_bundle(f"b{i}", "Failed", message=f"error kind {chr(97 + i)}") for i in range(10)]
    assert len(problems_of(make_report("edge-1", 1, bundles))) == MAX_PROBLEMS
