"""Shared pytest set-up: the fixture modules live in tests/fixtures, one per real part."""

pytest_plugins = [
    "tests.fixtures.gitserver",
    "tests.fixtures.cluster",
    "tests.fixtures.realnode",
]
