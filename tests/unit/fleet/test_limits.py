"""Every input is bounded: a hostile file is refused at its path:line within a few milliseconds,
with a message saying which limit it exceeds, and the rest of the repo still loads."""

from __future__ import annotations

import io
import json
import os
import pathlib
import time

import pytest

from agent import fleet
from agent.fleet import commands
from agent.fleet.limits import Limits
from tests.unit.fleet.repos import base_files, bundle, write_repo


def laughs(levels: int, width: int = 9, indent: str = "") -> str:
    """A "billion laughs" document: each level lists the previous one ``width`` times."""
    lines = [f"{indent}l0: &l0 [lol]"]
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def problems_of(root: pathlib.Path, **limits: int) -> list[fleet.Problem]:
    started = time.perf_counter()
    found = fleet.validate_repo(root, limits=Limits(**limits))
    assert time.perf_counter() - started < 2.0
    return found


def only(problems: list[fleet.Problem]) -> fleet.Problem:
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    ("where", "file", "line"),
    [
        ("values", "bundles/web/bundle.yaml", 13),  # the level that passes the budget
        ("values file", "bundles/web/values/big.yaml", 6),
        ("cluster", "clusters/eu-1.yaml", 13),
    ],
)
def test_alias_expansion_is_refused_before_it_happens(
    tmp_path: pathlib.Path, where: str, file: str, line: int
) -> None:
    files = base_files()
    if where == "values":
        files["bundles/web/bundle.yaml"] = bundle(
            "web", "values:\n" + laughs(9, indent="  ") + "targets:\n  - clusterSelector: {}\n"
        )
    elif where == "values file":
        files["bundles/web/bundle.yaml"] = bundle(
            "web", "valuesFiles: [values/big.yaml]\ntargets:\n  - clusterSelector: {}\n"
        )
        files["bundles/web/values/big.yaml"] = laughs(9)
    else:
        files["clusters/eu-1.yaml"] += "x:\n" + laughs(9, indent="  ")
    problem = only(problems_of(write_repo(tmp_path, files)))
    assert (problem.file, problem.line) == (file, line)
    assert "exceeds the limit of 100000 values" in problem.message


def test_alias_count_is_bounded(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/values/many.yaml"] = "a: &a 1\nl:\n" + "  - *a\n" * 20
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "valuesFiles: [values/many.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    problem = only(problems_of(write_repo(tmp_path, files), max_aliases=10))
    assert (problem.file, problem.line) == ("bundles/web/values/many.yaml", 13)
    assert "exceeds the limit of 10 aliases" in problem.message


def deep(depth: int) -> str:
    """``values`` nested ``depth`` levels below the bundle's top-level mapping."""
    return (
        "values:\n"
        + "".join(f"{'  ' * level}k{level}:\n" for level in range(1, depth))
        + "  " * depth
        + "x: 1\n"
    )


def test_one_depth_limit_for_validate_and_plan_reported_at_its_line(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle("web", deep(63) + "targets:\n  - clusterSelector: {}\n")
    root = write_repo(tmp_path, files)
    assert problems_of(root) == []  # 64 levels, counting the top-level mapping: accepted, and plannable
    for output_format in ("table", "json"):
        out = io.StringIO()
        assert commands.plan(str(root), "eu-1", output_format, stdout=out, stderr=io.StringIO()) == 0
    assert json.loads(out.getvalue())
    files["bundles/web/bundle.yaml"] = bundle("web", deep(64) + "targets:\n  - clusterSelector: {}\n")
    root = write_repo(tmp_path, files)
    problem = only(problems_of(root))
    assert (problem.file, problem.line) == ("bundles/web/bundle.yaml", 71)  # the 65th mapping
    assert problem.message == "nesting exceeds the limit of 64 levels"
    err = io.StringIO()
    assert commands.plan(str(root), "eu-1", "json", stdout=io.StringIO(), stderr=err) == 1
    assert "bundle.yaml:71: nesting exceeds the limit of 64 levels" in err.getvalue()


def test_nesting_through_aliases_is_bounded(tmp_path: pathlib.Path) -> None:
    chain = "".join(f"y{i}: &y{i} {{k: *y{i - 1}}}\n" for i in range(1, 100))
    files = base_files()
    files["bundles/web/values/chain.yaml"] = "y0: &y0 {a: 1}\n" + chain
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "valuesFiles: [values/chain.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    problem = only(problems_of(write_repo(tmp_path, files)))
    assert problem.file == "bundles/web/values/chain.yaml"
    assert "nesting exceeds the limit of 64 levels (through an alias)" in problem.message


@pytest.mark.parametrize("number", ["1" * 5000, "0x" + "f" * 500, "-" + "9" * 65])
def test_an_integer_with_too_many_digits_is_a_problem_not_a_traceback(
    tmp_path: pathlib.Path, number: str
) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle(
        "web", f"values:\n  n: {number}\ntargets:\n  - clusterSelector: {{}}\n"
    )
    problem = only(problems_of(write_repo(tmp_path, files)))
    assert (problem.file, problem.line) == ("bundles/web/bundle.yaml", 8)
    assert "digits exceeds the limit of 64" in problem.message


@pytest.mark.parametrize(
    "name", ["bundles/web/bundle.yaml", "bundles/web/values/huge.yaml", "clusters/eu-1.yaml"]
)
def test_a_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path: pathlib.Path, name: str) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "valuesFiles: [values/huge.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    files["bundles/web/values/huge.yaml"] = "a: 1\n"
    root = write_repo(tmp_path, files)
    with (root / name).open("a") as stream:
        stream.write("# " + "x" * (2 * 1024 * 1024) + "\n")
    problems = problems_of(root)
    assert any(
        p.file in (name, "bundles/web/bundle.yaml") and "exceeds the limit of 1 MiB per file" in p.message
        for p in problems
    ), problems


def test_the_repo_total_is_bounded_and_stops_the_whole_load(tmp_path: pathlib.Path) -> None:
    root = write_repo(tmp_path, base_files())
    problems = problems_of(root, max_repo_bytes=300)
    assert problems
    assert all("read per load of the fleet repo" in p.message for p in problems)
    loaded = fleet.load_fleet(root, limits=Limits(max_repo_bytes=300))
    assert loaded.fatal
    with pytest.raises(fleet.FleetRepoError):
        fleet.plan_agent(loaded, "eu-1")


def test_merged_values_past_helms_release_limit_block_that_release(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle(
        "web",
        "values:\n  blob: " + "x" * 600 + "\n"
        "targets:\n  - clusterName: eu-1\n    values:\n      more: " + "y" * 600 + "\n"
        "  - clusterName: us-1\n",
    )
    root = write_repo(tmp_path, files)
    problem = only(problems_of(root, max_values_bytes=1000))
    assert problem.file == "bundles/web/bundle.yaml"
    assert "for cluster 'eu-1' are 1" in problem.message
    assert "exceeds the limit of 1000 bytes" in problem.message
    loaded = fleet.load_fleet(root, limits=Limits(max_values_bytes=1000))
    eu = fleet.plan_agent(loaded, "eu-1")
    assert [r.bundle for r in eu.plan.releases] == ["base"]
    assert [b.bundle for b in eu.blocked] == ["web"]
    assert "web" in eu.protected_bundles
    assert [r.bundle for r in fleet.plan_agent(loaded, "us-1").plan.releases] == ["base", "web"]


def test_messages_never_echo_more_than_a_short_excerpt_of_a_file(tmp_path: pathlib.Path) -> None:
    secret = "SECRET-" + "s" * 500
    files = base_files()
    files["groups/arm.yaml"] = "\n".join(f"root{i}:{secret}:19000:0:99999:7:::" for i in range(20)) + "\n"
    files["clusters/eu-1.yaml"] = f"{secret}\n{secret}\n"
    files["bundles/web/bundle.yaml"] = bundle("web", f"{secret}: 1\n")
    problems = problems_of(write_repo(tmp_path, files))
    assert problems
    assert all(len(p.message) < 300 and secret not in p.message for p in problems), problems


def test_the_number_of_files_is_bounded_and_stops_the_whole_load(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files.update({f"clusters/empty/c{i}.yaml": "" for i in range(30)})
    root = write_repo(tmp_path, files)
    problems = problems_of(root, max_files=20)
    assert (
        "clusters/empty",
        "listing it passes the limit of 20 files and directories per load of the fleet repo",
    ) in {(p.file, p.message) for p in problems}
    assert len(problems) <= 3
    assert fleet.load_fleet(root, limits=Limits(max_files=20)).fatal


def test_a_fifo_is_never_opened(tmp_path: pathlib.Path) -> None:
    root = write_repo(tmp_path, base_files())
    os.mkfifo(root / "clusters" / "pipe.yaml")
    os.mkfifo(root / "charts" / "app" / "templates" / "pipe.yaml")
    problems = problems_of(root)
    assert ("clusters/pipe.yaml", "is not a regular file or directory; not read") in {
        (p.file, p.message) for p in problems
    }
    assert any(p.file == "charts/app" and "pipe.yaml is not a regular file" in p.message for p in problems)
