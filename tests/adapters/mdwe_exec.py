"""Run a command under the kernel's memory-deny-write-execute (prctl PR_SET_MDWE, Linux ≥ 6.3).

``python mdwe_exec.py CMD ARGS...`` turns MDWE on, proves a writable+executable mapping is now
refused, then execs CMD, which inherits the setting. This is the per-process form of what
systemd's MemoryDenyWriteExecute=yes enforces with seccomp, so a program that runs here will not
be killed by that unit setting. Exits 77 (skip) where the kernel lacks PR_SET_MDWE.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
EXIT_SKIP = 77


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print(f"PR_SET_MDWE unavailable: errno {ctypes.get_errno()}", file=sys.stderr)
        sys.exit(EXIT_SKIP)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit("MDWE is on but a W+X mapping was allowed")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
