"""`validate` and `plan` need no git executable: a CI job that only lints the repo has none."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from tests.unit.fleet.test_example_repo import EXAMPLE


def run_without_git(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    script = pathlib.Path(sys.executable).parent / "flotilla-agent"
    environment = {"PATH": str(empty), "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C.UTF-8")}
    return subprocess.run(
        [str(script), *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_validate_and_plan_run_with_no_git_on_path(tmp_path: pathlib.Path) -> None:
    validated = run_without_git(tmp_path, "validate", str(EXAMPLE))
    assert validated.returncode == 0, validated.stderr
    assert "valid fleet repo" in validated.stdout
    planned = run_without_git(
        tmp_path, "plan", str(EXAMPLE), "--cluster", "eu-west-dublin-1", "--output", "json"
    )
    assert planned.returncode == 0, planned.stderr
    assert '"releases"' in planned.stdout
    broken = tmp_path / "broken"
    (broken / "clusters").mkdir(parents=True)
    (broken / "clusters" / "a.yaml").write_text("name: [\n")
    invalid = run_without_git(tmp_path, "validate", str(broken))
    assert invalid.returncode == 1
    assert "clusters/a.yaml:" in invalid.stdout
    assert "Traceback" not in invalid.stderr


def test_the_fleet_commands_do_not_import_gitpython() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from agent.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['validate', {str(EXAMPLE)!r}])\n"
        "print(sorted(name for name in sys.modules if name == 'git' or name.startswith('git.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
