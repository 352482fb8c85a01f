"""The jail around the worker parent: one readable bubblewrap configuration, and a probe.

The worker parent (the process that imports torch once and forks a child per request) runs
inside bubblewrap with new user, pid, network, ipc, uts and cgroup namespaces, as uid/gid 65534,
with no capabilities and a cleared environment. Its root file system is made of:

- read-only binds of the parts of /usr that Python loads from: `/usr/lib/<arch>` (the shared
  libraries), `/usr/lib64` (the dynamic loader), `/usr/lib/python3*` and `/usr/lib/locale`, and
  `ldconfig` (which ctypes.util.find_library runs); never /usr/bin, /usr/share or /usr/local;
- `/lib`, `/lib64`, `/bin` and `/sbin` as the host has them: the same symlinks into /usr, or
  read-only binds where they are folders;
- read-only binds of the Python installation (`sys.base_prefix`, `sys.prefix`; for Debian's own
  /usr only the interpreter), the environment's site-packages and the `app` package (never the
  rest of a checkout);
- of /etc only `/etc/ld.so.cache` and `/etc/fonts` (library and font look-up), read-only;
- a private tmpfs `/tmp`, its own `/proc` (the host's boot line, kernel configuration, modules,
  symbols and scheduler and timer dumps bound over by empty files) and a minimal `/dev`, plus
  `/dev/nvidia*` where CUDA is allowed and present.

Run as root, the jail joins a cgroup whose pids.max bounds its threads. No home folder and no
other part of /etc exists inside. This file is the whole description of that wall.
"""

from __future__ import annotations

import atexit
import glob
import os
import platform
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import app
from app.sandbox.limits import JAIL_TASKS_ENV

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
# Files of /proc that describe the host and that Python never reads: the kernel's command line
# (boot parameters, sometimes secrets), its build configuration, modules and symbols.
MASKED_PROC_FILES = (
    "/proc/cmdline",
    "/proc/config.gz",
    "/proc/modules",
    "/proc/kallsyms",
    "/proc/sched_debug",
    "/proc/timer_list",
)
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


def _system_libraries() -> list[str]:
    """The parts of /usr that Python and its extension modules load from: the shared libraries
    of this architecture, the dynamic loader's folder, Debian's Python, the C.UTF-8 locale and
    ldconfig; never /usr as a whole (its programs, documentation and share/ describe the host)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [
        f"/usr/lib/{multiarch}",
        "/usr/lib64",
        f"/usr/lib/{version}",
        "/usr/lib/python3",
        "/usr/lib/locale",
        # ctypes.util.find_library (how pyseccomp finds libseccomp) asks `ldconfig -p`
        os.path.realpath("/sbin/ldconfig"),
    ]


def _python_installation(prefix: str) -> list[str]:
    """What a Python prefix contributes: the whole prefix, or for the system's /usr only its
    interpreter (its libraries are among _system_libraries)."""
    real = os.path.realpath(prefix)
    if real != "/usr":
        return [real]
    return [os.path.realpath(sys.executable)]


def _read_only_paths() -> list[str]:
    """Paths bound read-only: the system libraries, Python, site-packages and `app`."""
    candidates = [
        *_system_libraries(),
        *_python_installation(sys.base_prefix),
        *_python_installation(sys.prefix),
        *site.getsitepackages(),
    ]
    paths: list[str] = []
    for path in candidates:
        real = os.path.realpath(path)
        inside_one = any(real == p or real.startswith(p + os.sep) for p in paths)
        if os.path.exists(real) and not inside_one:
            paths.append(real)
    package = str(Path(app.__file__).resolve().parent)
    if not any(package == p or package.startswith(p + os.sep) for p in paths):
        # a checkout: bind only `app/` itself, never its parent (the rest of the checkout)
        paths.append(package)
    return paths


_empty: list[str] = []


def _empty_file() -> str:
    """An empty, read-only regular file to bind over what the jail must not show (/dev/null
    cannot serve: binds are mounted nodev, and a device there cannot be opened)."""
    if not _empty or not os.path.isfile(_empty[0]):
        folder = tempfile.mkdtemp(prefix="autograd-explorer-")
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "empty")
        with open(path, "w"):
            pass
        os.chmod(path, 0o444)
        atexit.register(shutil.rmtree, folder, True)
        _empty[:] = [path]
    return _empty[0]


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
    for path in MASKED_PROC_FILES:  # the host's boot line and kernel build, as empty files
        if os.path.exists(path):
            command += ["--ro-bind", _empty_file(), path]
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
    return in_tasks_cgroup(command, tasks_cgroup(), JAIL_TASKS_MAX)


# Tasks (processes and threads) of the whole jail, where a cgroup bounds them: enough for every
# worker child's helpers, far below the host's pid_max.
JAIL_TASKS_MAX = 4096


def runs_as_root() -> bool:
    """Whether the server runs as root, for whom the kernel ignores RLIMIT_NPROC."""
    return os.geteuid() == 0


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of a cgroup v1 controller, or v2's."""
    try:
        with open("/proc/self/cgroup") as lines:
            for line in lines:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(",") or (controller == "" and not controllers):
                    return path
    except (OSError, ValueError):
        pass
    return None


def make_tasks_cgroup(name: str, limit: int) -> str | None:
    """A cgroup under this process's own whose pids.max is limit (removed at exit), or None
    where none can be made (no pids controller, or no right to create one)."""
    for root, controller in (("/sys/fs/cgroup/pids", "pids"), ("/sys/fs/cgroup", "")):
        own = _own_cgroup(controller)
        if own is None or not os.path.isdir(root):
            continue
        parent = os.path.join(root, own.lstrip("/"))
        folder = os.path.join(parent, name)
        if not os.path.isdir(parent):  # never create cgroups on the way to our own
            continue
        try:
            if not os.path.isdir(folder):
                os.mkdir(folder)
            with open(os.path.join(folder, "pids.max"), "w") as limit_file:
                limit_file.write(str(limit))
        except OSError:
            try:
                os.rmdir(folder)
            except OSError:
                pass
            continue
        atexit.register(_remove_cgroup, folder)
        return folder
    return None


def _remove_cgroup(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


_tasks_cgroup: list[str | None] = []


def tasks_cgroup() -> str | None:
    """The jail's tasks cgroup, made on first use (only for root: otherwise RLIMIT_NPROC holds)."""
    if not _tasks_cgroup:
        name = f"autograd-explorer-{os.getpid()}"
        _tasks_cgroup.append(make_tasks_cgroup(name, JAIL_TASKS_MAX) if runs_as_root() else None)
    return _tasks_cgroup[0]


def in_tasks_cgroup(command: list[str], folder: str | None, limit: int) -> list[str]:
    """The bwrap command, made to join the cgroup folder first (when there is one): the kernel
    does not apply RLIMIT_NPROC to root's processes, so the cgroup's pids.max is what bounds
    the threads of every child."""
    if folder is None:
        return command
    at = command.index("--chdir")  # after --clearenv, which would drop it
    inner = [*command[:at], "--setenv", JAIL_TASKS_ENV, str(limit), *command[at:]]
    join = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
    return ["/bin/sh", "-c", join, folder, *inner]


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
