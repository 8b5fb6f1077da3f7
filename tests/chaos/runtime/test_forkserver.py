"""An instance the zygote forked, watched through a pidfd: even one gone before it could be watched."""

from __future__ import annotations

import subprocess
from typing import cast

from chaos.runtime.forkserver import ForkedProcess, ForkServer


class Zygote:
    """What a ForkedProcess asks the zygote: the exit code of a child it reaped."""

    def __init__(self, code: int) -> None:
        self.code = code

    def exit_code(self, pid: int) -> int | None:
        return self.code


def test_an_instance_that_exited_and_was_reaped_before_it_was_watched_reports_its_exit_code():
    # a broken profile makes an instance exit at once; under load the zygote reaped it before the runtime opened
    # its pidfd, and the runtime failed with ProcessLookupError instead of "exited with code 1" and its log
    gone = subprocess.Popen(["true"])
    gone.wait()
    proc = ForkedProcess(gone.pid, cast(ForkServer, Zygote(1)))
    assert proc.poll() == 1 and proc.wait(timeout=0) == 1
    proc.kill()  # nothing to signal, and no stranger that took its number is signalled
