"""The machine record of the products' provenance (sodinn._platform)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pytest

from sodinn._platform import native_bfloat16, platform_record


def test_the_record_names_this_machine_and_its_libraries():
    record = platform_record()
    json.dumps(record)  # JSON-able, as the products store it
    assert record["machine"] == platform.machine() and record["python"] == platform.python_version()
    assert record["libraries"]["numpy"] == np.__version__ and "tensorflow" in record["libraries"]
    assert 1 <= record["cpu_count"] and platform_record() is record  # computed once per process


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="the CPU model and flags are read from Linux's /proc/cpuinfo")
def test_the_cpu_and_its_flags_are_those_of_proc_cpuinfo():
    text = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    record = platform_record()
    assert record["cpu"] in text
    assert set(record["cpu_flags"]) == flags & {"fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
    assert native_bfloat16() is bool(flags & {"avx512_bf16", "amx_bf16"})
