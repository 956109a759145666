"""`flotilla-agent validate` and `flotilla-agent plan`: exit codes and what they print."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from agent.cli import main
from tests.unit.fleet.test_example_repo import EXAMPLE


@pytest.fixture
def broken_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """The example with a misspelled field and a dependsOn cycle (telemetry-gateway <-> sensor-bridge)."""
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    kiosk = root / "bundles" / "kiosk-ui" / "bundle.yaml"
    kiosk.write_text(kiosk.read_text().replace("\nnamespace: retail\n", "\nnamspace: retail\n"))
    gateway = root / "bundles" / "telemetry-gateway" / "bundle.yaml"
    gateway.write_text(gateway.read_text().replace("  - edge-base\n", "  - sensor-bridge\n"))
    return root


def line_of(path: pathlib.Path, text: str) -> int:
    return next(
        number for number, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text)
    )


def test_validate_example_exits_0_with_a_one_line_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "valid fleet repo (9 clusters, 4 groups, 6 bundles)" in out


def test_validate_names_file_and_line_of_each_problem(
    broken_copy: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(broken_copy)]) == 1
    captured = capsys.readouterr()
    kiosk = broken_copy / "bundles" / "kiosk-ui" / "bundle.yaml"
    sensor = broken_copy / "bundles" / "sensor-bridge" / "bundle.yaml"
    misspelled = "unknown field 'namspace' in the top level (did you mean 'namespace'?)"
    cycle = "dependsOn cycle: sensor-bridge -> telemetry-gateway -> sensor-bridge"
    assert captured.out.splitlines() == [
        f"{kiosk}:{line_of(kiosk, 'namspace')}: {misspelled}",
        f"{sensor}:{line_of(sensor, '  - telemetry-gateway')}: {cycle}",
    ]
    assert "2 problems found" in captured.err


def test_validate_a_missing_directory(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "is not a directory" in capsys.readouterr().out


def test_plan_json_is_identical_twice_and_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["plan", "--cluster", "eu-west-lyon-1", str(EXAMPLE), "--output", "json"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    document = json.loads(outputs[0])
    assert document["cluster"]["name"] == "eu-west-lyon-1"
    for release in document["releases"]:
        assert {"bundle", "release", "namespace", "values", "digest", "chart", "dependsOn"} <= release.keys()
    bundles = [release["bundle"] for release in document["releases"]]
    assert bundles.index("edge-base") < bundles.index("telemetry-gateway") < bundles.index("sensor-bridge")


def test_plan_table_lists_every_release_with_its_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cluster", "us-east-boston-1", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Cluster us-east-boston-1  (arch=amd64")
    assert "BUNDLE" in out
    assert "DIGEST" in out
    assert "COLLECTOR_ENDPOINT: https://otel.us-east.example.net:4317" in out
    assert "sensor-bridge" not in out  # an amd64 cluster


def test_plan_unknown_cluster_exits_1_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cluster", "eu-west-lyon", str(EXAMPLE)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown cluster 'eu-west-lyon'" in captured.err
    assert "did you mean 'eu-west-lyon-1'?" in captured.err


def test_plan_of_an_invalid_repo_prints_the_problems_and_exits_1(
    broken_copy: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--cluster", "eu-west-lyon-1", str(broken_copy)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dependsOn cycle" in captured.err


def test_the_installed_script_runs_validate_and_plan(broken_copy: pathlib.Path) -> None:
    script = pathlib.Path(sys.executable).parent / "flotilla-agent"
    valid = subprocess.run([script, "validate", str(EXAMPLE)], capture_output=True, text=True, check=False)
    assert (valid.returncode, valid.stderr) == (0, "")
    broken = subprocess.run(
        [script, "validate", str(broken_copy)], capture_output=True, text=True, check=False
    )
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    assert len(broken.stdout.splitlines()) == 2
    plans = [
        subprocess.run(
            [script, "plan", "--cluster", "ap-south-mumbai-1", "--output", "json", str(EXAMPLE)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert plans[0] == plans[1]
    assert json.loads(plans[0])["releases"]
