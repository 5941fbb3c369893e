"""``python -m dlep.emu.nsexec NETNS PARENT_PID -- ARGV...``: run ARGV inside NETNS.

Used by ``dlep-emu run`` to start each node's ``dlep-router`` and the
scenario's commands: the helper
asks to be killed with its parent (``PR_SET_PDEATHSIG``, kept across
``exec``), enters the namespace and execs the command, so the router's pid
is the one the runner watches. A separate process rather than a
``preexec_fn``, because the runner has threads and ``fork`` + Python code
in the child is unsafe then.
"""

from __future__ import annotations

import os
import sys

from .system import enter_netns, set_parent_death_signal


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns only on a usage error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or args[2] != "--" or not args[1].isdigit():
        print("usage: python -m dlep.emu.nsexec NETNS PARENT_PID -- ARGV...", file=sys.stderr)
        return 2
    netns, parent, cmd = args[0], int(args[1]), args[3:]
    set_parent_death_signal(parent)
    if netns != "-":
        enter_netns(netns)
    os.execvp(cmd[0], cmd)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
