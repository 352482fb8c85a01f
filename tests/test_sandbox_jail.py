"""The jail's bubblewrap command line, its probe, and the jail holding on its own (no seccomp)."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import site
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import app
from app.sandbox import jail

REPO = Path(__file__).resolve().parent.parent
APP_DIR = str(Path(app.__file__).resolve().parent)
ARGV = [sys.executable, "-c", "print(1)"]
needs_bwrap = pytest.mark.skipif(jail.bubblewrap() is None, reason="bubblewrap is not installed")


def pairs(command: list[str], flag: str) -> list[tuple[str, str]]:
    """(source, destination) of every `flag SRC DEST` in a command line."""
    return [(command[i + 1], command[i + 2]) for i, arg in enumerate(command) if arg == flag]


def value_of(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def bwrap_part(command: list[str]) -> list[str]:
    """The bubblewrap command line itself (run as root it follows a cgroup-joining shell)."""
    return command[command.index("/usr/bin/bwrap") :]


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(jail, "bubblewrap", lambda: "/usr/bin/bwrap")
    return bwrap_part(jail.jail_command(ARGV))


def test_namespaces_user_and_lifetime(command: list[str]) -> None:
    assert command[0] == "/usr/bin/bwrap"
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in command, flag
    assert value_of(command, "--uid") == value_of(command, "--gid") == "65534"
    assert value_of(command, "--cap-drop") == "ALL"
    assert "--share-net" not in command


def test_binds_only_system_libraries_python_site_packages_and_app(command: list[str]) -> None:
    masks = [(s, d) for s, d in pairs(command, "--ro-bind") if d.startswith("/proc/")]
    binds = [(s, d) for s, d in pairs(command, "--ro-bind") if not d.startswith("/proc/")]
    assert all(source == destination for source, destination in binds)
    assert masks and all(os.path.getsize(source) == 0 for source, _ in masks)
    sources = {source for source, _ in binds}
    system = {
        f"/{link}" for link in ("lib", "lib64", "bin", "sbin") if not os.path.islink(f"/{link}")
    }
    shared = {path for path in ("/etc/ld.so.cache", "/etc/fonts") if os.path.exists(path)}
    assert sources == set(jail._read_only_paths()) | shared | (system & sources)
    assert sys.base_prefix and any(inside(os.path.realpath(sys.base_prefix), s) for s in sources)
    assert any(inside(APP_DIR, source) for source in sources)
    # never the checkout beyond app/, a home folder, /etc as a whole, or the root
    for forbidden in (str(REPO), str(Path.home()), "/etc", "/", "/home", "/root"):
        assert not any(inside(forbidden, source) for source in sources), forbidden
    assert not any(inside(str(REPO / "tests"), source) for source in sources)
    assert not any(inside(str(REPO / "pyproject.toml"), source) for source in sources)
    assert pairs(command, "--bind") == [] and pairs(command, "--dev-bind") == []


def described(path: str) -> str:
    """How the jail's docstring names a bound path: `/usr/lib/<arch>`, `/usr/lib/python3*`."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    path = path.replace(multiarch, "<arch>")
    if os.path.basename(path) == "ldconfig":
        return "ldconfig"
    return re.sub(r"/python3[.\d]*$", "/python3*", path)


def test_the_docstring_names_every_system_path_bound(command: list[str]) -> None:
    python = {
        *jail._python_installation(sys.base_prefix),
        *jail._python_installation(sys.prefix),
        *map(os.path.realpath, site.getsitepackages()),
        APP_DIR,
    }
    system = [
        destination
        for _, destination in pairs(command, "--ro-bind")
        if not destination.startswith("/proc/") and destination not in python
    ]
    system += [link for _, link in pairs(command, "--symlink")]
    assert "/etc/fonts" in system
    for path in system:
        assert f"`{described(path)}`" in jail.__doc__, path


def test_private_tmp_is_mounted_before_every_bind(command: list[str]) -> None:
    # a checkout or virtual environment under /tmp is bound on top of the private /tmp; a tmpfs
    # mounted after the binds would hide them
    tmpfs = command.index("--tmpfs")
    assert command[tmpfs + 1] == "/tmp"
    binds = [i for i, arg in enumerate(command) if arg in ("--ro-bind", "--bind", "--dev-bind")]
    assert binds and min(binds) > tmpfs
    assert value_of(command, "--proc") == "/proc" and value_of(command, "--dev") == "/dev"


def test_environment_is_cleared_and_rebuilt(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = secrets.token_hex(12)
    monkeypatch.setenv("AE_JAIL_TEST_SECRET", secret)
    command = bwrap_part(jail.jail_command(ARGV))
    assert not any(secret in arg or "AE_JAIL_TEST_SECRET" in arg for arg in command)
    clear = command.index("--clearenv")
    setenv = [i for i, arg in enumerate(command) if arg == "--setenv"]
    assert setenv and clear < min(setenv)
    names = {command[i + 1]: command[i + 2] for i in setenv}
    allowed = set(jail.KEPT_ENVIRONMENT) | set(jail.PASSED_ENVIRONMENT)
    allowed |= {"PYTHONPATH", jail.JAIL_TASKS_ENV}
    assert set(names) <= allowed
    assert names["PYTHONPATH"] == str(Path(APP_DIR).parent)
    assert names["HOME"] == "/tmp"


def test_passed_variables_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail, "bubblewrap", lambda: "/usr/bin/bwrap")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    names = dict(pairs(jail.jail_command(ARGV), "--setenv"))
    assert names["OPENBLAS_CORETYPE"] == "Haswell" and "CUDA_VISIBLE_DEVICES" not in names


def test_argv_runs_last_in_the_private_tmp(command: list[str]) -> None:
    assert command[-len(ARGV) - 3 :] == ["--chdir", "/tmp", "--", *ARGV]


def test_gpu_devices_are_bound_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail, "bubblewrap", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(jail, "_gpu_devices", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    with_gpu = jail.jail_command(ARGV, gpu=True)
    assert pairs(with_gpu, "--dev-bind") == [
        ("/dev/nvidia0", "/dev/nvidia0"),
        ("/dev/nvidiactl", "/dev/nvidiactl"),
    ]
    assert pairs(jail.jail_command(ARGV, gpu=False), "--dev-bind") == []


def test_probe_without_bubblewrap_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail, "bubblewrap", lambda: None)
    status = jail.probe()
    assert status.available is False
    assert "bubblewrap (bwrap) is not installed" in status.reason and "install" in status.reason
    with pytest.raises(FileNotFoundError, match="bubblewrap"):
        jail.jail_command(ARGV)


def test_probe_when_namespaces_are_refused_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail, "bubblewrap", lambda: "/bin/false")  # starts, creates nothing
    status = jail.probe()
    assert status.available is False
    assert "could not create its namespaces" in status.reason
    assert "docs/security.md" in status.reason


@needs_bwrap
def test_probe_finds_a_working_jail_here() -> None:
    status = jail.probe()
    assert status.available, status.reason


JAILED_PROGRAM = """
import json, os, socket, sys
def attempt(action):
    try:
        return 'ok ' + repr(action())
    except BaseException as exc:
        return type(exc).__name__
def connect():
    with socket.create_connection(('127.0.0.1', PORT), timeout=5) as s:
        return s.recv(100)
def write_tmp():
    with open('/tmp/NAME', 'w') as f:
        return f.write('inside')
print(json.dumps({
    'uid': attempt(os.getuid),
    'canary': attempt(lambda: open('CANARY').read()),
    'passwd': attempt(lambda: open('/etc/passwd').read()),
    'pyproject': attempt(lambda: open('REPO/pyproject.toml').read()),
    'write_app': attempt(lambda: open('APP/NAME', 'w')),
    'write_tmp': attempt(write_tmp),
    'connect': attempt(connect),
    'signal_host': attempt(lambda: os.kill(HOST_PID, 0)),
    'environ': attempt(lambda: dict(os.environ)),
    'pids': attempt(lambda: sorted(int(p) for p in os.listdir('/proc') if p.isdigit())),
}))
"""


@needs_bwrap
def test_the_jail_alone_holds_without_seccomp_or_limits(tmp_path: Path) -> None:
    """A plain Python in the jail, no child limits at all: files, environment, network, pids."""
    if not jail.probe().available:
        pytest.skip("the jail cannot start here")
    secret = secrets.token_hex(12)
    name = f"ae-jail-probe-{secret[:8]}"
    canary = Path("/tmp") / f"ae-canary-{secret[:8]}"
    canary.write_text(secret)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    replacements = {
        "PORT": str(listener.getsockname()[1]),
        "CANARY": str(canary),
        "REPO": str(REPO),
        "APP": APP_DIR,
        "NAME": name,
        "HOST_PID": str(os.getpid()),
    }
    program = JAILED_PROGRAM
    for key, value in replacements.items():
        program = program.replace(key, value)
    try:
        result = subprocess.run(
            jail.jail_command([sys.executable, "-c", program]),
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "AE_JAIL_TEST_SECRET": secret},
            stdin=subprocess.DEVNULL,
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's loopback
    finally:
        listener.close()
        canary.unlink()
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout and "AE_JAIL_TEST_SECRET" not in result.stdout
    seen = json.loads(result.stdout)
    assert seen["uid"] == "ok 65534"
    assert seen["canary"] == seen["passwd"] == seen["pyproject"] == "FileNotFoundError"
    assert seen["write_app"] in ("OSError", "PermissionError")  # read-only bind, not our files
    assert seen["write_tmp"] == "ok 6" and not (Path("/tmp") / name).exists()
    assert not (Path(APP_DIR) / name).exists()
    assert seen["connect"] in ("ConnectionRefusedError", "OSError")  # an empty network
    assert seen["signal_host"] == "ProcessLookupError"  # the host's processes do not exist
    assert seen["environ"].startswith("ok {") and "'PATH': '/usr/bin:/bin'" in seen["environ"]
    assert len(eval(seen["pids"][3:])) <= 2  # noqa: S307 - bubblewrap and this program


def test_a_folder_under_tmp_stays_visible_in_the_jail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not jail.probe().available:
        pytest.skip("bubblewrap cannot start here")
    package = tmp_path / "checkout"
    package.mkdir()
    (package / "probe_module.py").write_text("ANSWER = 42\n")
    bound = jail._read_only_paths()
    monkeypatch.setattr(jail, "_read_only_paths", lambda: [*bound, str(package)])
    program = f"import sys; sys.path.insert(0, {str(package)!r}); import probe_module; print(probe_module.ANSWER)"
    result = subprocess.run(
        jail.jail_command([sys.executable, "-c", program]),
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode()[-500:]
    assert result.stdout.strip() == b"42"


THREAD_COUNT = """
import threading
stop = threading.Event()
started = 0
try:
    while started < {most}:
        threading.Thread(target=stop.wait, daemon=True).start()
        started += 1
except RuntimeError:
    pass
stop.set()
print(started)
"""


@needs_bwrap
@pytest.mark.skipif(not jail.runs_as_root(), reason="RLIMIT_NPROC holds for other users")
def test_run_as_root_the_jails_cgroup_bounds_its_threads(tmp_path: Path) -> None:
    """The kernel ignores RLIMIT_NPROC for root: without the cgroup a jailed program starts
    every thread it asks for; inside it, no more than the cgroup's pids.max."""
    if not jail.probe().available:
        pytest.skip("the jail cannot start here")
    folder = jail.make_tasks_cgroup(f"autograd-explorer-test-{secrets.token_hex(4)}", 32)
    if folder is None:
        pytest.skip("no cgroup with pids.max can be made here")
    program = "import resource\n"
    program += "resource.setrlimit(resource.RLIMIT_NPROC, (8, 8))\n"  # ignored for root
    program += THREAD_COUNT.format(most=100)
    bare = jail.in_tasks_cgroup(jail.jail_command([sys.executable, "-c", program]), None, 32)
    bare = bare[bare.index(jail.bubblewrap()) :]  # the jail without any cgroup of its own
    alone = subprocess.run(bare, capture_output=True, text=True, timeout=120)
    assert int(alone.stdout) == 100, alone.stderr  # the rlimit held nothing
    bounded = jail.in_tasks_cgroup(bare, folder, 32)
    assert bounded[:2] == ["/bin/sh", "-c"] and bounded[3] == folder
    held = subprocess.run(bounded, capture_output=True, text=True, timeout=120)
    assert 0 < int(held.stdout) < 32, held.stderr
    assert (Path(folder) / "pids.max").read_text().strip() == "32"


def test_the_jail_masks_what_describes_the_host(command: list[str]) -> None:
    masked = {d for s, d in pairs(command, "--ro-bind") if d.startswith("/proc/")}
    assert "/proc/cmdline" in masked
    assert masked == {p for p in jail.MASKED_PROC_FILES if os.path.exists(p)}
    sources = {s for s, d in pairs(command, "--ro-bind") if not d.startswith("/proc/")}
    assert "/usr" not in sources and not any(inside(s, "/usr/share") for s in sources)
    assert not any(inside(s, "/usr/bin") and os.path.isdir(s) for s in sources)


@needs_bwrap
def test_the_jails_proc_shows_the_hosts_boot_line_empty() -> None:
    if not jail.probe().available:
        pytest.skip("the jail cannot start here")
    program = (
        "import json, os\n"
        "print(json.dumps({p: open(p).read() for p in "
        f"{list(jail.MASKED_PROC_FILES)!r} if os.path.exists(p) and not p.endswith('.gz')}}))\n"
    )
    done = subprocess.run(
        jail.jail_command([sys.executable, "-c", program]), capture_output=True, timeout=120
    )
    shown = json.loads(done.stdout)
    assert "/proc/cmdline" in shown and set(shown.values()) == {""}, done.stderr
