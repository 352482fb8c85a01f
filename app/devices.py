"""The devices programs can run on: the CPU, and each CUDA device with its name and memory.

The server forks workers that use CUDA, so it must never initialise CUDA itself: CUDA devices are
read through NVML (the driver's management library), never through the CUDA runtime.
"""

from __future__ import annotations

import ctypes
import os
import platform
from functools import cache

import torch

from app.status_schemas import DeviceInfo

_NAME_BYTES = 96
_UUID_BYTES = 96


class _Memory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


def cpu_device() -> DeviceInfo:
    """The CPU, with its model name and the machine's memory."""
    name = platform.processor() or None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.partition(":")[2].strip() or name
                    break
    except OSError:
        pass
    try:
        memory: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return DeviceInfo(id="cpu", kind="cpu", name=name, total_memory_bytes=memory)


def _nvml_gpus() -> list[tuple[str, str, int]] | None:
    """(uuid, name, total memory) of every GPU the driver knows; None without NVML."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        count = ctypes.c_uint()
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        gpus = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                return None
            name = ctypes.create_string_buffer(_NAME_BYTES)
            uuid = ctypes.create_string_buffer(_UUID_BYTES)
            memory = _Memory()
            nvml.nvmlDeviceGetName(handle, name, _NAME_BYTES)
            nvml.nvmlDeviceGetUUID(handle, uuid, _UUID_BYTES)
            nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory))
            gpus.append((uuid.value.decode(errors="replace"), name.value.decode(), memory.total))
        return gpus
    finally:
        nvml.nvmlShutdown()


def _visible(gpus: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The GPUs CUDA_VISIBLE_DEVICES leaves to this process, in CUDA's order."""
    chosen: list[tuple[str, str, int]] = []
    for entry in torch.cuda._parse_visible_devices():  # torch's own reading of the variable
        if isinstance(entry, int):
            match = [gpus[entry]] if 0 <= entry < len(gpus) else []
        else:
            match = [g for g in gpus if g[0].startswith(entry)]
        if len(match) != 1 or match[0] in chosen:
            break  # CUDA stops at the first entry it cannot use
        chosen.append(match[0])
    return chosen


@cache
def cuda_devices() -> list[DeviceInfo]:
    """Each CUDA device this process may use, without initialising CUDA here."""
    if not torch.cuda.is_available():  # NVML-based: PYTORCH_NVML_BASED_CUDA_CHECK is set in app
        return []
    gpus = _visible(_nvml_gpus() or [])
    named = [
        DeviceInfo(id=f"cuda:{i}", kind="cuda", name=name, total_memory_bytes=memory)
        for i, (_, name, memory) in enumerate(gpus)
    ]
    # devices NVML cannot name (MIG slices, no NVML library) are still listed, without details
    count = torch.cuda.device_count()
    return named + [DeviceInfo(id=f"cuda:{i}", kind="cuda") for i in range(len(named), count)]


def list_devices(allow_cuda: bool = True) -> list[DeviceInfo]:
    """The CPU first, then the CUDA devices (none when the server does not allow CUDA)."""
    return [cpu_device(), *(cuda_devices() if allow_cuda else [])]
