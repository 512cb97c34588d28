"""The allocator setting of tt_core.memory."""

import platform
import subprocess
import sys

import pytest
from tt_core import memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the settings exist in glibc only")
def test_keep_freed_memory_takes_effect_with_glibc():
    assert memory.keep_freed_memory() is True


def _applied_in_fresh_process(env_value: str | None) -> str:
    code = "import tt_core.memory as m; print(m.apply_default())"
    env = {"PATH": "/usr/bin:/bin"} | ({"TT_KEEP_FREED_MEMORY": env_value} if env_value is not None else {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_the_environment_variable_turns_it_off():
    assert _applied_in_fresh_process("0") == "False"
    assert _applied_in_fresh_process(None) == str(GLIBC)


def test_page_faults_stop_when_freed_memory_is_kept():
    """A loop that makes and frees 8 MiB arrays faults its pages in again on every pass
    with glibc's defaults, and not after keep_freed_memory."""
    if not GLIBC:
        pytest.skip("the settings exist in glibc only")
    code = """
import resource, sys, numpy as np
if sys.argv[1] == "1":
    import tt_core.memory as m; m.keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(2_000_000, np.float32); b = a * 2.0; del b
start = faults()
for _ in range(50):
    b = a * 2.0
    del b
print(faults() - start)
"""
    runs = {flag: int(subprocess.run([sys.executable, "-c", code, flag], env={"PATH": "/usr/bin:/bin",
                                      "TT_KEEP_FREED_MEMORY": "0"}, capture_output=True, text=True,
                                     check=True).stdout) for flag in ("0", "1")}
    assert runs["1"] < 100 < runs["0"], runs
