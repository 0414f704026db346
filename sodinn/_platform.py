"""The machine and libraries a product was made on, for its provenance record.

A sample file or a trained model is a deterministic function of its inputs and seed on one machine (a training of
seed 0 repeated in another process gives the same weights bit for bit), but not across machines: numba's fused
multiply-adds, the BLAS kernels numpy and the Keras backend pick, and their thread counts follow the CPU. So the
products record the CPU, its vector instruction sets and the versions of the numerical libraries, to tell a change
of machine from a change of code when two runs of one seed differ.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["native_bfloat16", "platform_record", "usable_cores"]

#: The CPU flags that change floating-point results (fused multiply-add, the vector widths BLAS and XLA pick)
_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
#: Numerical libraries whose version is recorded when installed (metadata only: nothing is imported)
_LIBRARIES = ("numpy", "scipy", "numba", "keras", "tensorflow", "jax", "jaxlib", "torch")


@cache
def platform_record() -> dict[str, Any]:
    """Return the machine and library versions a product is made with (JSON-able, computed once per process).

    Returns
    -------
    dict
        ``python``, ``system`` (:func:`platform.platform`), ``machine`` (``"x86_64"``), ``cpu`` (the model name
        of ``/proc/cpuinfo`` where it exists, else :func:`platform.processor`), ``cpu_flags`` (those of
        :data:`_FLAGS` the CPU has, Linux only), ``cpu_count`` (the cores this process may use) and
        ``libraries`` (name -> version of the installed ones among :data:`_LIBRARIES`).
    """
    cpu, flags = platform.processor() or "", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() == "flags":
                    have = set(value.split())
                    flags = [name for name in _FLAGS if name in have]
                    break
    except OSError:  # not Linux: the processor string alone
        pass
    libraries = {}
    for name in _LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "system": platform.platform(terse=True), "machine": platform.machine(),
            "cpu": cpu, "cpu_flags": flags, "cpu_count": usable_cores(), "libraries": libraries}


def usable_cores() -> int:
    """Return the number of CPU cores this process may run on (its affinity on Linux, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def native_bfloat16() -> bool | None:
    """Tell whether this CPU computes bfloat16 products in hardware (AVX512-BF16 or AMX-BF16 instructions).

    Where it does (Intel Sapphire Rapids and later, AMD Zen 4 and later), ``precision = "mixed_bfloat16"``
    trains and predicts faster than float32; elsewhere the backend emulates bfloat16, more slowly.

    Returns
    -------
    bool or None
        From the CPU flags of ``/proc/cpuinfo``; None where they cannot be read (not Linux).
    """
    if not Path("/proc/cpuinfo").exists():
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(platform_record()["cpu_flags"]))

