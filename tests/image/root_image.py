"""Turn a root filesystem tarball into a one-layer image archive that ``docker load`` accepts, with
the target's platform in its config (``docker import --platform`` is ignored by a single-platform
engine, and BuildKit then tries to pull an image whose architecture does not match).

    python3 tests/image/root_image.py ROOT.tar linux/arm/v7 flotilla-base:bookworm-armv7 | docker load
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_archive(root: Path, platform: str, tag: str, out: BinaryIO) -> None:
    """Stream a docker-archive (manifest.json, config, the root tarball as its only layer) to ``out``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or parts[0] != "linux":
        raise SystemExit(f"root_image.py: platform must look like linux/ARCH[/VARIANT], not {platform!r}")
    diff_id = "sha256:" + _sha256(root)
    config: dict[str, object] = {
        "architecture": parts[1],
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": f"mmdebstrap root {root.name}"}],
    }
    if len(parts) == 3:
        config["variant"] = parts[2]
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _add_bytes(archive, config_name, config_bytes)
        layer = archive.gettarinfo(str(root), arcname="layer.tar")
        with root.open("rb") as stream:
            archive.addfile(layer, stream)
        _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    write_archive(Path(argv[0]), argv[1], argv[2], sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
