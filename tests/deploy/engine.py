"""The Docker engine and Compose as the deploy test finds them, or why it cannot use them.

Every reason to skip names the command that failed and its first line of error: the
test skips where this machine cannot run containers, and fails only on what is ours
(the Dockerfile, the compose file, the code in the containers).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

#: Where the debootstrapped base is kept between runs (outside the repository).
BASE_CACHE = Path(os.environ.get("QASDK_DEBOOTSTRAP_CACHE", "/var/cache/qasdk-debootstrap"))
BASE_IMAGE = "debian:bookworm-slim"
DEBIAN_MIRROR = os.environ.get("QASDK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PYPI = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/") + "/pip/"


class Unusable(Exception):
    """Docker cannot be used here, for a reason outside the project (the test skips)."""


def run(
    command: Sequence[str],
    *,
    timeout: float = 600,
    check: bool = True,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; on failure raise with its exit status and the end of its output."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited with {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[-1] if text else f"exit status {result.returncode}"


def compose_command() -> list[str]:
    """Compose v2 (``docker compose``) where it is installed, else v1 (``docker-compose``)."""
    chosen = os.environ.get("QASDK_COMPOSE")
    if chosen:
        return chosen.split()
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise Unusable(
        "neither `docker compose` (v2) nor `docker-compose` (v1) is installed "
        "(apt-get install docker-compose; .ci/run does)"
    )


def engine() -> None:
    """Raise :class:`Unusable` unless a Docker engine answers and can run a container."""
    if shutil.which("docker") is None:
        raise Unusable("no docker command (apt-get install docker.io; .ci/run does)")
    info = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=60)
    if info.returncode != 0:
        raise Unusable(f"no Docker engine answers (`docker info`: {_first_line(info)})")
    base_image()
    trial = run(["docker", "run", "--rm", BASE_IMAGE, "true"], check=False, timeout=300)
    if trial.returncode != 0:
        raise Unusable(f"the engine cannot run a container (`docker run`: {_first_line(trial)})")


def base_image() -> None:
    """``debian:bookworm-slim``: there already, or debootstrapped (cached) and imported."""
    if run(["docker", "image", "inspect", BASE_IMAGE], check=False).returncode == 0:
        return
    root = BASE_CACHE / "rootfs"
    if not (root / "etc" / "debian_version").is_file():
        if shutil.which("debootstrap") is None:
            raise Unusable(f"no {BASE_IMAGE} image and no debootstrap to build one")
        if os.geteuid() != 0:
            raise Unusable(f"no {BASE_IMAGE} image, and debootstrap needs root to build one")
        partial = BASE_CACHE / "partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        made = run(
            ["debootstrap", "--variant=minbase", "bookworm", str(partial), DEBIAN_MIRROR],
            check=False,
            timeout=1200,
        )
        if made.returncode != 0:
            raise Unusable(f"debootstrap from {DEBIAN_MIRROR} failed: {_first_line(made)}")
        # What docker's own debian:bookworm-slim leaves out: downloaded packages, indexes.
        for pattern in (
            "var/cache/apt/archives/*.deb",
            "var/cache/apt/*.bin",
            "var/lib/apt/lists/*",
        ):
            for path in partial.glob(pattern):
                if path.is_file():
                    path.unlink()
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
    with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
        imported = subprocess.run(
            ["docker", "import", "-", BASE_IMAGE],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
        )
    if imported.returncode != 0:
        raise AssertionError(f"docker import of {root} failed: {imported.stderr[-2000:]}")


def package_index() -> None:
    """Raise :class:`Unusable` unless the package index the image build uses answers."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    context = ssl.create_default_context(cafile=str(bundle) if bundle.is_file() else None)
    try:
        with urllib.request.urlopen(PYPI, timeout=20, context=context):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise Unusable(f"the image build needs {PYPI}, which does not answer: {exc}") from exc


def proxy_certificates() -> list[Path]:
    """This machine's own CA certificates (an HTTPS proxy's), which the build must trust."""
    folder = Path("/usr/local/share/ca-certificates")
    return sorted(folder.glob("*.crt")) if folder.is_dir() else []
