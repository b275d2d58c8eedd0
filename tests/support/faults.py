"""Run the real `trialwatch` CLI with one fault injected that no real input can cause on demand.

    python -m tests.support.faults FAULT -- --config trialwatch.yaml run

- cycle_thread_dies  the cycle runner's loop itself raises after its first cycle: the worker thread
                     ends, as a bug or a MemoryError outside any cycle would end it
"""

from __future__ import annotations

import sys
from typing import Any


def _cycle_thread_dies() -> None:
    from watcher.service.workers import CycleRunner

    run_due = CycleRunner.run_due

    def work(self: Any) -> None:
        self.wanted.wait()
        self.wanted.clear()
        run_due(self, "full")
        raise RuntimeError("injected: the cycle runner's own loop broke")

    CycleRunner.work = work  # type: ignore[method-assign]


FAULTS = {"cycle_thread_dies": _cycle_thread_dies}


def main(argv: list[str]) -> None:
    fault, separator, *cli_args = argv
    assert separator == "--", "usage: python -m tests.support.faults FAULT -- CLI-ARGS"
    FAULTS[fault]()
    from watcher.cli.main import cli

    cli.main(args=cli_args, prog_name="trialwatch")


if __name__ == "__main__":
    main(sys.argv[1:])
