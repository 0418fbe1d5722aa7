"""`retain_freed_memory` without a real glibc to change: the no-op elsewhere and a refusal that names its cause.

Its effect on a real process (no fresh page faults for reused buffers) is tested in
tests/system/test_freed_memory_reuse.py, since it lasts for the whole process.
"""

from __future__ import annotations

import ctypes
import platform

import pytest

from mien.memory import retain_freed_memory


@pytest.mark.parametrize("system, libc", [("Linux", ("", "")), ("Linux", ("musl", "1.2")), ("Darwin", ("", ""))])
def test_it_changes_nothing_where_glibc_is_not_the_c_library(monkeypatch, system, libc):
    calls = []
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: libc)
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: calls.append(a))
    assert retain_freed_memory() is False and calls == []


def test_a_refused_mallopt_raises_naming_the_parameter(monkeypatch):
    class Libc:
        def __init__(self):
            self.seen = []

        def mallopt(self, param, value):
            self.seen.append((param, value))
            return 0 if param == -1 else 1  # glibc: 1 on success, 0 on error; refuse M_TRIM_THRESHOLD

    libc = Libc()
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("glibc", "2.36"))
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: libc)
    with pytest.raises(OSError, match=r"mallopt\(M_TRIM_THRESHOLD, 2147483647\).*train.retain_memory=false, --no-retain-memory"):
        retain_freed_memory()
    assert libc.seen == [(-4, 0), (-1, 2**31 - 1)]  # mmap off first, then the trim threshold
