"""Operating-system limits a worker child puts on itself before it runs a program."""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000

# Syscalls a program never needs: new programs, other processes, the network, the file system's
# shape, the kernel's state.
DENIED_SYSCALLS = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "mount",
    "umount2",
    "unshare",
    "setns",
    "chroot",
    "pivot_root",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "swapon",
    "swapoff",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "truncate",
    "ftruncate",
    "memfd_create",
    "userfaultfd",
    "io_uring_setup",
    "personality",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "creat",
    "name_to_handle_at",
    "open_by_handle_at",
    # System V and POSIX IPC objects outlive the child in the jail's IPC namespace: memory no
    # limit counts, and a channel to later requests
    "shmget",
    "shmat",
    "msgget",
    "semget",
    "mq_open",
    # a process handle signals like kill() but is not checked against the caller's pid
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    # I/O priority is inherited from the worker parent by every later child; no program needs it
    "ioprio_set",
    # other processes' resources, memory and pages
    "kcmp",
    "process_madvise",
    "process_mrelease",
)
# Syscalls that signal a process or thread named by their first argument: only this process.
SIGNAL_SYSCALLS = ("kill", "tgkill", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
# Syscalls that change another process's limits or scheduling when their first argument names
# it (the worker parent's would be inherited by every later child): only pid 0, this process.
OTHER_PROCESS_SYSCALLS = (
    "prlimit64",
    "sched_setscheduler",
    "sched_setparam",
    "sched_setattr",
    "sched_setaffinity",
    "migrate_pages",
    "move_pages",
    "setpgid",
)
# fcntl and ioctl commands that make the kernel send SIGIO (or any signal) to another process.
F_SETOWN, F_SETOWN_EX, FIOSETOWN, SIOCSPGRP = 8, 15, 0x8901, 0x8902
# Threads (and processes) of one child: enough for torch's and CUDA's helpers, not a bomb that
# exhausts the host's process ids. The kernel does not apply it to a uid that maps to root.
MAX_THREADS = 256
JAIL_TASKS_ENV = "AE_JAIL_TASKS_MAX"  # set by the jail when its cgroup bounds its tasks
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)
DEVICE_SAFE_WRITE_FLAGS = (os.O_CREAT, os.O_TRUNC, os.O_APPEND)  # CUDA opens /dev/nvidia* O_RDWR


@dataclass(frozen=True)
class ChildLimits:
    """The limits of one worker child."""

    cpu_seconds: int
    memory_margin_bytes: int | None  # None: no address-space limit (CUDA needs a large one)
    work_dir: str
    cuda: bool = False
    idle_after_cpu_seconds: float | None = None  # then drop to idle priority


def lower_priority_after(cpu_seconds: float) -> bool:
    """Drop this process to idle priority once it has used cpu_seconds of CPU time."""

    def to_idle(signum: int, frame: object) -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        except OSError:
            pass

    try:
        signal.signal(signal.SIGPROF, to_idle)
        signal.setitimer(signal.ITIMER_PROF, max(cpu_seconds, 0.001))
    except (OSError, ValueError):
        return False
    return True


def _current_address_space() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _set(limit: int, value: int) -> bool:
    try:
        resource.setrlimit(limit, (value, value))
        return True
    except (ValueError, OSError):
        return False


def _maps_to_root() -> bool:
    """Whether this process's uid is root outside every user namespace (RLIMIT_NPROC exempt)."""
    if os.getuid() == 0:
        return True
    try:
        with open("/proc/self/uid_map") as uid_map:
            for line in uid_map:
                inside, outside, count = (int(part) for part in line.split())
                if inside <= os.getuid() < inside + count:
                    return outside + os.getuid() - inside == 0
    except (OSError, ValueError):
        pass
    return False


def _open_fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def leave_network() -> bool:
    """Move into a new, empty network namespace (no interfaces but a down loopback)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) == 0:
        return True
    return libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 0x4000, 1 << 18
# Host files of /proc that Python and torch read (processor features, memory size); the rest of
# /proc, other processes included, is not in a child's view.
PROC_FILES_KEPT = ("cpuinfo", "meminfo")
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def private_proc(scratch: str) -> bool:
    """See only this process in /proc: in a user and mount namespace of this child's own,
    /proc becomes a read-only tmpfs holding this process's own entry (`self`, its pid,
    `thread-self`) and PROC_FILES_KEPT, so no program sees another request's process, the
    worker parent or the host."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid, pid = os.getuid(), os.getgid(), os.getpid()
    try:
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
        staging = tempfile.mkdtemp(dir=scratch)
        flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
        _check(libc.mount(b"tmpfs", staging.encode(), b"tmpfs", flags, b"mode=555"), "tmpfs")
        own = os.path.join(staging, "self")
        os.mkdir(own)
        _check(
            libc.mount(f"/proc/{pid}".encode(), own.encode(), None, MS_BIND | MS_REC, None), "self"
        )
        for name in PROC_FILES_KEPT:
            if os.path.exists(f"/proc/{name}"):
                target = os.path.join(staging, name)
                open(target, "w").close()
                _check(
                    libc.mount(f"/proc/{name}".encode(), target.encode(), None, MS_BIND, None), name
                )
        os.symlink("self", os.path.join(staging, str(pid)))
        os.symlink(f"self/task/{pid}", os.path.join(staging, "thread-self"))
        _check(
            libc.mount(None, staging.encode(), None, MS_REMOUNT | MS_RDONLY | flags, None),
            "read-only",
        )
        _check(libc.mount(staging.encode(), b"/proc", None, MS_MOVE, None), "move")
        os.rmdir(staging)
    except OSError:
        return False
    return True


def drop_capabilities() -> bool:
    """Give up every capability (those a user namespace of the child's own gave it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    return libc.capset(header, data) == 0


_prepared_filters: dict[bool, Any] = {}


def prepare_seccomp(cuda: bool) -> Any:
    """The filter's rules that do not depend on the child, built once (building is slow)."""
    if cuda in _prepared_filters:
        return _prepared_filters[cuda]
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError):
        return None
    try:
        deny = seccomp.ERRNO(errno.EPERM)
        filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for name in DENIED_SYSCALLS:
            try:
                filt.add_rule(deny, name)
            except (RuntimeError, ValueError, OSError):
                continue  # a syscall this architecture does not have
        filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
        filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone
        filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "openat2")
        for name in OTHER_PROCESS_SYSCALLS:
            filt.add_rule(deny, name, seccomp.Arg(0, seccomp.NE, 0))
        # setpriority(which, who): PRIO_PROCESS (0) of this process (0) only, never a group or
        # the user, whose processes are the worker parent and every other child
        filt.add_rule(deny, "setpriority", seccomp.Arg(0, seccomp.NE, 0))
        filt.add_rule(deny, "setpriority", seccomp.Arg(1, seccomp.NE, 0))
        low32 = 0xFFFFFFFF  # commands are 32-bit: the kernel ignores the upper half
        for command in (F_SETOWN, F_SETOWN_EX):
            filt.add_rule(deny, "fcntl", seccomp.Arg(1, seccomp.MASKED_EQ, low32, command))
        for command in (FIOSETOWN, SIOCSPGRP):
            filt.add_rule(deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, low32, command))
        for flag in DEVICE_SAFE_WRITE_FLAGS if cuda else WRITE_FLAGS:
            filt.add_rule(deny, "open", seccomp.Arg(1, seccomp.MASKED_EQ, flag, flag))
            filt.add_rule(deny, "openat", seccomp.Arg(2, seccomp.MASKED_EQ, flag, flag))
    except (RuntimeError, ValueError, OSError):
        return None
    _prepared_filters[cuda] = filt
    return filt


PR_SET_DUMPABLE = 4


def not_dumpable() -> bool:
    """No other process of the same user may read this one's memory (/proc/PID/mem, ptrace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def install_seccomp(cuda: bool) -> bool:
    """Deny new processes, networking, file-system changes, writes, and reaching other processes."""
    filt = prepare_seccomp(cuda)
    if filt is None:
        return False
    import pyseccomp as seccomp

    try:
        deny = seccomp.ERRNO(errno.EPERM)
        me = os.getpid()
        for name in SIGNAL_SYSCALLS:
            filt.add_rule(deny, name, seccomp.Arg(0, seccomp.NE, me))
        filt.load()
        return True
    except (RuntimeError, ValueError, OSError):
        return False


def apply(limits: ChildLimits) -> dict[str, bool]:
    """Put every limit on this process that the host allows; which ones took effect."""
    layers: dict[str, bool] = {"fresh_process": True}
    sys.dont_write_bytecode = True
    os.chdir(limits.work_dir)
    os.environ["TMPDIR"] = limits.work_dir
    layers["no_core_dumps"] = _set(resource.RLIMIT_CORE, 0)
    soft_cpu = max(1, limits.cpu_seconds)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft_cpu, soft_cpu + 1))
        layers["cpu_time"] = True
    except (ValueError, OSError):
        layers["cpu_time"] = False
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    layers["file_size"] = _set(resource.RLIMIT_FSIZE, 0)
    layers["open_files"] = _set(resource.RLIMIT_NOFILE, _open_fd_count() + 32)
    # run as root, RLIMIT_NPROC is ignored; the jail's cgroup (pids.max) bounds threads instead
    bounded_by_cgroup = bool(os.environ.get(JAIL_TASKS_ENV))
    nproc = _set(resource.RLIMIT_NPROC, MAX_THREADS)
    layers["threads"] = (nproc and not _maps_to_root()) or bounded_by_cgroup
    if limits.memory_margin_bytes is not None:
        layers["memory"] = _set(
            resource.RLIMIT_AS, _current_address_space() + limits.memory_margin_bytes
        )
    else:
        layers["memory"] = False
    # CUDA's driver reads /proc/driver and more: a CUDA child keeps the jail's /proc
    layers["own_processes"] = not limits.cuda and private_proc(limits.work_dir)
    layers["network"] = leave_network()
    layers["capabilities_dropped"] = drop_capabilities()
    layers["not_dumpable"] = not_dumpable()
    if limits.idle_after_cpu_seconds is not None:
        layers["fair_priority"] = lower_priority_after(limits.idle_after_cpu_seconds)
    layers["seccomp"] = install_seccomp(limits.cuda)
    layers["processes"] = layers["seccomp"]
    return layers
