"""The jail around the worker parent: one readable bubblewrap configuration, and a probe.

The worker parent (the process that imports torch once and forks a child per request) runs
inside bubblewrap with new user, pid, network, ipc, uts and cgroup namespaces, as uid/gid 65534,
with a cleared environment and a root file system made of read-only binds of just the Python
installation, the environment's site-packages and the `app` package, plus a private `/tmp`, its
own `/proc` and a minimal `/dev`. Nothing of the host's `/etc`, home folders or checkout (beyond
`app/`) exists inside. This file is the whole description of that wall.
"""

from __future__ import annotations

import glob
import os
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import app

JAIL_UID = 65534
JAIL_GID = 65534
# What Python and torch need from the environment; everything else is cleared.
KEPT_ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    # never let a CUDA probe initialise the driver in the forking parent
    "PYTORCH_NVML_BASED_CUDA_CHECK": "1",
}
# Host variables passed through when set: processor quirks that numerical libraries need.
PASSED_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES")
GPU_DEVICE_GLOBS = (
    "/dev/nvidia[0-9]*",
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
    "/dev/nvidia-caps",  # MIG instances
)


@dataclass(frozen=True)
class JailStatus:
    """Whether the jail can start on this host, and why not."""

    available: bool
    reason: str = ""


def bubblewrap() -> str | None:
    """Path of the bwrap executable, if installed."""
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


def _read_only_paths() -> list[str]:
    """Folders bound read-only: the system libraries, Python, site-packages and `app`."""
    candidates = ["/usr", sys.base_prefix, sys.prefix, *site.getsitepackages()]
    paths: list[str] = []
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in paths:
            paths.append(real)
    package = str(Path(app.__file__).resolve().parent)
    if not any(package == p or package.startswith(p + os.sep) for p in paths):
        # a checkout: bind only `app/` itself, never its parent (the rest of the checkout)
        paths.append(package)
    return paths


def _gpu_devices() -> list[str]:
    found: list[str] = []
    for pattern in GPU_DEVICE_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def jail_command(argv: list[str], gpu: bool = False) -> list[str]:
    """The bwrap command line that runs argv inside the jail."""
    bwrap = bubblewrap()
    if bwrap is None:
        raise FileNotFoundError("bubblewrap (bwrap) is not installed")
    package_parent = str(Path(app.__file__).resolve().parent.parent)
    command = [
        bwrap,
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup namespaces
        "--uid",
        str(JAIL_UID),
        "--gid",
        str(JAIL_GID),
        "--hostname",
        "autograd-explorer",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        # the private /tmp first: binds that follow may lie beneath it (a checkout or a virtual
        # environment under /tmp), and a tmpfs mounted after them would hide them
        "--tmpfs",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    for path in _read_only_paths():
        command += ["--ro-bind", path, path]
    for link in ("lib", "lib64", "bin", "sbin"):
        target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
        if target is not None:
            command += ["--symlink", target, f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            command += ["--ro-bind", f"/{link}", f"/{link}"]
    for shared in ("/etc/ld.so.cache", "/etc/fonts"):  # library and font look-up, no secrets
        if os.path.exists(shared):
            command += ["--ro-bind", shared, shared]
    if gpu:
        for device in _gpu_devices():
            command += ["--dev-bind", device, device]
    environment = dict(KEPT_ENVIRONMENT, PYTHONPATH=package_parent)
    for name in PASSED_ENVIRONMENT:
        if name in os.environ:
            environment[name] = os.environ[name]
    for name, value in environment.items():
        command += ["--setenv", name, value]
    command += ["--chdir", "/tmp", "--", *argv]
    return command


def probe(timeout: float = 30.0) -> JailStatus:
    """Start the jail once with a trivial program: can it run here?"""
    if bubblewrap() is None:
        return JailStatus(False, "bubblewrap (bwrap) is not installed; install Debian's bubblewrap")
    try:
        result = subprocess.run(
            jail_command([sys.executable, "-c", "import os; print(os.getuid())"]),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return JailStatus(False, f"bubblewrap could not start: {exc}")
    if result.returncode != 0 or result.stdout.strip() != str(JAIL_UID).encode():
        message = result.stderr.decode(errors="replace").strip()[:300] or "no output"
        if "execvp" in message:  # the jail stood, but Python was not where it was bound
            return JailStatus(False, f"bubblewrap could not start Python in the jail ({message})")
        return JailStatus(
            False,
            f"bubblewrap could not create its namespaces ({message}); in a container, see "
            "docs/security.md for the flags that allow it",
        )
    return JailStatus(True)
