"""Rollout waves and the deletion brake in the fleet repo: parsing, validation at file:line, plans."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from agent import fleet
from agent.cli import main
from agent.fleet.rollout import REST_WAVE, Amount
from tests.unit.fleet.repos import HEADER, base_files, bundle, cluster, write_repo

WAVES = """\
rollout:
  waves:
    - name: canary
      clusterNames: [eu-1]
      bakeSeconds: 120
    - name: arm
      clusterGroup: arm
      maxConcurrent: "50%"
      maxFailed: 1
      deadlineSeconds: 900
"""


def repo_with(tmp_path: pathlib.Path, **files: str) -> pathlib.Path:
    contents = base_files()
    contents["clusters/eu-2.yaml"] = cluster("eu-2", region="eu", arch="arm64")
    contents.update({name.replace("__", "/").replace("_yaml", ".yaml"): text for name, text in files.items()})
    return write_repo(tmp_path / "fleet", contents)


def fleet_file(body: str) -> str:
    return f"{HEADER}kind: Fleet\n" + textwrap.dedent(body)


def test_a_bundle_rollout_places_each_cluster_in_the_first_matching_wave_and_the_rest_last(tmp_path):
    root = repo_with(
        tmp_path, bundles__web__bundle_yaml=bundle("web", "targets:\n  - clusterSelector: {}\n" + WAVES)
    )
    repo = fleet.load_repo(root)
    waves = {name: fleet.plan_cluster(repo, name).releases[-1].wave for name in ("eu-1", "eu-2", "us-1")}
    assert {name: (w.index, w.name, w.count) for name, w in waves.items() if w} == {
        "eu-1": (1, "canary", 3),  # eu-1 is arm64 too: the first matching wave wins
        "eu-2": (2, "arm", 3),
        "us-1": (3, REST_WAVE, 3),
    }
    arm = waves["eu-2"].spec.waves[1]
    assert (arm.max_concurrent, arm.max_failed, arm.bake_seconds, arm.deadline_seconds) == (
        Amount(50, percent=True),
        Amount(1),
        0,
        900,
    )
    base = fleet.plan_cluster(repo, "eu-1").releases[0]
    assert base.bundle == "base"
    assert base.wave is None


def test_fleet_yaml_gives_every_bundle_a_default_that_a_bundle_rollout_replaces(tmp_path):
    default = fleet_file(
        """\
        rollout:
          waves:
            - name: first
              clusterSelector: {matchLabels: {region: us}}
        deletionBrake:
          maxReleases: 3
          maxPercent: 20
          confirm: ["eu-1:abc"]
        """
    )
    root = repo_with(
        tmp_path,
        fleet_yaml=default,
        bundles__web__bundle_yaml=bundle("web", "targets:\n  - clusterSelector: {}\nrollout:\n  waves: []\n"),
    )
    repo = fleet.load_repo(root)
    plan = {r.bundle: r for r in fleet.plan_cluster(repo, "us-1").releases}
    assert plan["base"].wave is not None
    assert (plan["base"].wave.index, plan["base"].wave.name) == (1, "first")
    assert plan["web"].wave is None  # an empty list turns staging off for that bundle
    assert repo.settings is not None
    assert (repo.settings.brake.max_releases, repo.settings.brake.max_percent) == (3, 20)
    assert repo.settings.brake.confirmed == {"eu-1:abc"}


@pytest.mark.parametrize(
    ("rollout", "line", "message"),
    [
        (
            "rollout:\n  waves:\n    - name: canary\n",
            11,
            "wave 'canary' needs clusterNames, clusterSelector or clusterGroup",
        ),
        (
            "rollout:\n  waves:\n    - name: a\n      clusterNames: [eu-1]\n"
            "    - name: a\n      clusterNames: [us-1]\n",
            13,
            "two waves are named 'a'",
        ),
        (
            "rollout:\n  waves:\n    - name: rest\n      clusterNames: [eu-1]\n",
            11,
            "reserved for the implicit last wave",
        ),
        (
            "rollout:\n  waves:\n    - name: a\n      clusterNames: [eu-1]\n      maxFailed: 10 percent\n",
            13,
            "maxFailed must be a whole number >= 0 or a percentage like '25%', got '10 percent'",
        ),
        (
            "rollout:\n  waves:\n    - name: a\n      clusterNames: [eu-1]\n      maxConcurrent: 0\n",
            13,
            "maxConcurrent must be a whole number >= 1",
        ),
        (
            "rollout:\n  waves:\n    - name: a\n      clusterGroup: nosuch\n",
            11,
            "wave 'a': no cluster group named 'nosuch'",
        ),
        (
            "rollout:\n  waves:\n    - name: a\n      clusterNames: [eu-1]\n      bakeSecs: 5\n",
            13,
            "unknown field 'bakeSecs'",
        ),
    ],
)
def test_validate_points_at_the_line_of_each_rollout_mistake(tmp_path, rollout, line, message):
    text = bundle("web", "targets:\n  - clusterSelector: {}\n" + rollout)
    root = repo_with(tmp_path, bundles__web__bundle_yaml=text)
    problems = fleet.validate_repo(root)
    assert any(
        p.file == "bundles/web/bundle.yaml" and p.line == line and message in p.message for p in problems
    ), problems


def test_a_broken_fleet_yaml_is_reported_at_its_line(tmp_path):
    root = repo_with(tmp_path, fleet_yaml=fleet_file("deletionBrake:\n  maxPercent: 150\n"))
    problems = fleet.validate_repo(root)
    assert [(p.file, p.line) for p in problems] == [("fleet.yaml", 4)]
    assert "maxPercent" in problems[0].message


def test_plan_shows_the_wave(tmp_path, capsys):
    root = repo_with(
        tmp_path, bundles__web__bundle_yaml=bundle("web", "targets:\n  - clusterSelector: {}\n" + WAVES)
    )
    assert main(["plan", "--cluster", "eu-2", str(root)]) == 0
    out = capsys.readouterr().out
    assert "WAVE" in out
    assert "2/3 arm" in out


def test_each_cluster_learns_how_many_clusters_the_bundle_targets_in_each_wave(tmp_path):
    root = repo_with(
        tmp_path, bundles__web__bundle_yaml=bundle("web", "targets:\n  - clusterSelector: {}\n" + WAVES)
    )
    wave = fleet.plan_cluster(fleet.load_repo(root), "us-1").releases[-1].wave
    assert wave is not None
    assert wave.sizes == (1, 1, 1)  # eu-1 canary, eu-2 arm, us-1 rest
