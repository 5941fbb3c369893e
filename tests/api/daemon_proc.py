"""A ``dlep-modem`` / ``dlep-router`` subprocess whose output the test reads as it runs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path


class DaemonProc:
    """``python -m dlep.cli.<role> --config FILE``; stdout and stderr
    collected line by line by a reader task, so the test can wait for a line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(
        cls, role: str, config: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> DaemonProc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"dlep.cli.{role}",
            "--config",
            str(config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def since(self, mark: int) -> str:
        """The output after the first ``mark`` lines."""
        return "\n".join(self.lines[mark:])

    async def wait_for(self, text: str, *, after: int = 0, timeout: float = 10.0) -> str:
        """The first line (after line ``after``) containing ``text``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for line in self.lines[after:]:
                if text in line:
                    return line
            if self.proc.returncode is not None and self._reader.done():
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"no line with {text!r} in the output:\n{self.output}")

    def send(self, sig: int) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` (if still running) and wait for the exit; its code."""
        self.send(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.wait_for(self._reader, 5)
        assert self.proc.returncode is not None
        return self.proc.returncode
