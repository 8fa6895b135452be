"""benchmarks/bench_national.py: the joint run's child process gets the time limit asked for,
"none" included (it was left out, and the child then took the default 60 s per sub-problem:
a "no limit" joint measurement stopped at 60 s)."""

from __future__ import annotations

from benchmarks.bench_national import child_command, main


def _limit(cmd: list[str]) -> str:
    return cmd[cmd.index("--time-limit") + 1]


def test_the_child_gets_no_limit_when_none_is_asked() -> None:
    assert _limit(child_command("travel", None, False)) == "0"
    assert _limit(child_command("travel", 30.0, True)) == "30.0"
    assert child_command("travel", 30.0, True)[-1] == "--off"
    assert "--off" not in child_command("travel", None, False)


def test_the_child_reads_zero_as_no_limit(monkeypatch) -> None:
    seen = {}

    def joint(objective: str, time_limit: float | None, off: bool) -> dict:
        seen.update(objective=objective, time_limit=time_limit, off=off)
        return {}

    monkeypatch.setattr("benchmarks.bench_national.joint", joint)
    argv = child_command("travel", None, False)[3:]
    assert main(argv) == 0
    assert seen == {"objective": "travel", "time_limit": None, "off": False}
