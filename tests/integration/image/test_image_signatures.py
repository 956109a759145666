"""``--verify-signatures gpg`` works in the shipped image, on every architecture: the image's own git
and gpg verify an OpenPGP-signed commit against a trusted keyring, and refuse an unsigned commit
and one signed by a key that is not in it.  The agent runs as the pod runs it (uid 10001, read-only
root, scratch space only in the state volume); the clone is mounted read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.gitserver import WorkingClone, git
from tests.fixtures.signing import SigningKey, gpg_key, signed_commit, stop_gpg_agent, trusted_keys
from tests.image import engine

pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]  # a cold image build counts

POD_LIKE = [
    "--read-only", "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--tmpfs", "/var/lib/flotilla:uid=10001,gid=10001,mode=0700", "--env", "TMPDIR=/var/lib/flotilla",
]  # fmt: skip


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SigningKey, SigningKey]]:
    directory = tmp_path_factory.mktemp("gpg-keys")
    made = (
        gpg_key(directory, "Fleet Admin", "admin@example.org"),
        gpg_key(directory, "Mallory", "m@example.org"),
    )
    yield made
    for key in made:
        stop_gpg_agent(key)


@pytest.fixture
def clone(tmp_path: Path) -> WorkingClone:
    origin = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    working = WorkingClone.clone(str(origin), tmp_path / "clone")
    shutil.copytree(engine.REPO_ROOT / "fleet-repo-example", working.path, dirs_exist_ok=True)
    return working


def validate(image: str, clone: WorkingClone, keyring: Path) -> subprocess.CompletedProcess[str]:
    """The agent in the image checks a copy of the clone's HEAD; the copy belongs to the agent's uid,
    as a checkout made in the pod would (git refuses a repository owned by someone else)."""
    copy = clone.path.with_name(f"checkout-{len(list(clone.path.parent.glob('checkout-*')))}")
    shutil.copytree(clone.path, copy, symlinks=True)
    for root, dirs, files in os.walk(copy):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, 10001, 10001)
    os.chown(copy, 10001, 10001)
    options = [*POD_LIKE, "--volume", f"{copy}:/fleet:ro", "--volume", f"{keyring}:/keys/trusted.asc:ro"]
    return engine.run(
        image, ["validate", "/fleet", "--verify-signatures", "gpg", "--trusted-keys", "/keys/trusted.asc"],
        options=options, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("arch", engine.ARCHES)
def test_gpg_signed_commit_is_trusted_and_unsigned_or_untrusted_ones_are_refused(
    arch: str,
    agent_image: Callable[[str], str],
    keys: tuple[SigningKey, SigningKey],
    clone: WorkingClone,
    tmp_path: Path,
) -> None:
    image = agent_image(arch)
    admin, mallory = keys
    keyring = trusted_keys(tmp_path / "trusted.asc", admin)

    commit = signed_commit(clone, "signed by the admin", {}, admin)
    good = validate(image, clone, keyring)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"commit {commit[:12]} signed by Fleet Admin <admin@example.org>" in good.stdout
    assert admin.fingerprint in good.stdout
    assert "trusted (gpg)" in good.stdout

    unsigned = signed_commit(clone, "not signed", {"README.md": "unsigned\n"}, None)
    refused = validate(image, clone, keyring)
    assert refused.returncode == 1
    assert f"commit {unsigned[:12]} refused: not signed" in refused.stderr, refused.stderr

    signed_commit(clone, "signed by someone else", {"README.md": "mallory\n"}, mallory)
    untrusted = validate(image, clone, keyring)
    assert untrusted.returncode == 1
    assert "signed by a key that is not trusted" in untrusted.stderr, untrusted.stderr

    # the next ordinary commit, signed by the admin again, is trusted again
    signed_commit(clone, "signed by the admin again", {"README.md": "admin\n"}, admin)
    again = validate(image, clone, keyring)
    assert again.returncode == 0, again.stdout + again.stderr
