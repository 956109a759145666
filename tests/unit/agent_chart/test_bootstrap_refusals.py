"""``bootstrap`` refuses bad input before it changes anything: no cluster is contacted (the
kubeconfig points nowhere) and the message names the flag or file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import cli


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    missing = tmp_path / "no-kubeconfig"
    code = cli.main(
        ["bootstrap", "--kubeconfig", str(missing), "--cluster", "c", "--repo-url", "https://x/r", *args]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_a_directory_that_is_not_a_fleet_repo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, tmp_path, "--write-bundle", str(tmp_path))
    assert code == 1
    assert "not a fleet repo checkout" in err
    assert out == ""


def test_a_broken_existing_bundle_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "clusters").mkdir()
    bundle = tmp_path / "bundles" / "flotilla-system" / "bundle.yaml"
    bundle.parent.mkdir(parents=True)
    bundle.write_text("- just a list\n")
    code, out, err = run(capsys, tmp_path, "--write-bundle", str(tmp_path))
    assert code == 1
    assert "bundles/flotilla-system/bundle.yaml: not a YAML mapping" in err
    assert out == ""


def test_namespaced_rbac_without_target_namespaces(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, tmp_path, "--rbac", "namespaced")
    assert code == 1
    assert "--target-namespaces" in err


def test_dry_run_needs_no_cluster_and_shows_the_bundle(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, tmp_path, "--dry-run", "--node-selector", "kubernetes.io/arch=arm64")
    assert code == 0
    assert "[dry run] [3/4] would run helm upgrade --install flotilla-agent" in out
    assert "+    kubernetes.io/arch: arm64" in out
    assert "+++ b/charts/flotilla-agent/Chart.yaml" in out
