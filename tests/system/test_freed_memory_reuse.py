"""`retain_freed_memory` in a fresh process: a freed large buffer comes back without new page faults.

A process of its own, since the setting lasts for the whole process and the default behaviour
must be measured before it.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocates, touches and frees a 64 MiB tensor (over glibc's 32 MiB mmap ceiling) and prints the
# minor page faults per round, under glibc's default and then after the call. Retained, glibc 2.36
# grew its heap in the first four rounds (aligned requests do not fit the freed block's exact
# place at first) and faulted in none after, so ten warm-up rounds come before the ten counted.
PROBE = """
import resource, torch
from mien.memory import retain_freed_memory

def faults_per_round(rounds=10):
    for _ in range(rounds):
        torch.empty(2**24).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        torch.empty(2**24).fill_(1.0)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds

default = faults_per_round()
applied = retain_freed_memory()
print(default, applied, faults_per_round())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere the call is a no-op")
def test_freed_buffers_are_reused_without_new_page_faults():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    default, applied, retained = out.stdout.split()
    pages = 2**26 // 4096  # 16,384 pages of 4 KiB per round
    assert applied == "True"
    assert float(default) > pages / 2, f"glibc's default should re-fault the unmapped buffer: {out.stdout}"
    assert float(retained) < pages / 100, f"retained memory should come back without faults: {out.stdout}"
