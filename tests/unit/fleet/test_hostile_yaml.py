"""Generated hostile YAML (aliases, depth, size, tags, encodings) fed to the one loader: it gives
a document or a bounded list of problems, within bounded time and memory, and never raises."""

from __future__ import annotations

import pathlib
import tempfile
import time
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from agent import fleet
from agent.fleet.yamldoc import Document, parse_bytes
from tests.unit.fleet.repos import base_files, relaxed, relaxed_io, write_repo


@st.composite
def laughs(draw: st.DrawFn) -> str:
    levels, width = draw(st.integers(1, 12)), draw(st.integers(2, 12))
    lines = ["l0: &l0 [lol]"] + [
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)
    ]
    return "\n".join(lines) + "\n"


@st.composite
def nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 3000))
    if draw(st.booleans()):
        return "[" * depth + "]" * depth
    return (
        "".join(f"{'  ' * level}k:\n" for level in range(min(depth, 300))) + "  " * min(depth, 300) + "x: 1\n"
    )


@st.composite
def alias_chains(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 300))
    merge = draw(st.booleans())
    body = "".join(
        f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}\n" if merge else f"m{i}: &m{i} {{k: *m{i - 1}}}\n"
        for i in range(1, count)
    )
    return "m0: &m0 {a: 1}\n" + body


TAGS = st.sampled_from(
    ["!!python/object:os.system", "!!set", "!!omap", "!!binary", "!!timestamp", "!x", "!!float", "!!int"]
)
SCALARS = st.sampled_from(
    ["1" * 5000, "0x" + "f" * 4400, "1e99999", ".nan", "-.inf", "~", "'x'", "2024-01-01", "<<"]
)
PIECES = st.one_of(
    laughs(),
    nested(),
    alias_chains(),
    st.builds(lambda tag, value: f"a: {tag} {value}\n", TAGS, SCALARS),
    st.builds(lambda value: f"a: {value}\n", SCALARS),
    st.builds(lambda n: "a:\n" + "  - &x y\n" * n, st.integers(0, 50)),  # the same anchor redefined
    st.just("a: *undefined\n"),
    st.just("? [1, 2]\n: x\n"),
    st.just("a: &x [*x]\n"),  # an alias to its own unfinished anchor
    st.just("---\na: 1\n---\nb: 2\n"),
    st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n\t ?,%@`0\x00\x85\u2028\ufeff")), max_size=80),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"])


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    text = "".join(draw(st.lists(PIECES, min_size=1, max_size=3)))
    try:
        return text.encode(draw(ENCODINGS))
    except UnicodeEncodeError:
        return text.encode("utf-8")


@relaxed
@given(content=hostile_bytes())
def test_the_parser_bounds_every_hostile_document(content: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = parse_bytes("f.yaml", content)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < 64 * 1024 * 1024
    if isinstance(result, Document):
        assert result.file == "f.yaml"
    else:
        assert result.file == "f.yaml"
        assert len(result.message) < 300


@relaxed_io
@given(
    content=hostile_bytes(),
    where=st.sampled_from(["bundles/web/bundle.yaml", "clusters/us-1.yaml", "values"]),
)
def test_the_loader_gives_a_bounded_problem_list_and_never_raises(content: bytes, where: str) -> None:
    files = base_files()
    if where == "values":
        files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
            "values:", "valuesFiles: [hostile.yaml]\nvalues:"
        )
    with tempfile.TemporaryDirectory() as temp:
        root = write_repo(pathlib.Path(temp), files)
        (root / ("bundles/web/hostile.yaml" if where == "values" else where)).write_bytes(content)
        started = time.perf_counter()
        problems = fleet.validate_repo(root)
        loaded = fleet.load_fleet(root)
        for name in loaded.clusters:
            fleet.plan_agent(loaded, name)
        assert time.perf_counter() - started < 5.0
        assert len(problems) <= 21  # one file: at most 20 problems and one counting the others
        assert all(len(problem.message) < 300 for problem in problems)
