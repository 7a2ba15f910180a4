"""``mtnet run``: snakemake under a supervisor, so that one command resumes after a kill.

``make demo`` runs ``mtnet run --cores N --rerun-incomplete``. A run killed with SIGKILL
leaves two things behind: Snakemake's lock (``.snakemake/locks``; the next run refuses to
start until ``snakemake --unlock``) and its jobs, which keep running and writing as orphans.
The supervisor handles both:

- **Stale locks.** Before starting, a lock in the working directory is checked against the
  live processes of this host: a snakemake whose working directory is this one (its
  ``-d/--directory``, else its cwd), or the supervisor of a run recorded in
  ``.snakemake/mtnet-run.json``, means a live run, and ``mtnet run`` stops with one
  ``error:`` line naming its pid (the lock is never touched). No live run: the lock is a dead
  run's, and ``snakemake --unlock`` clears it. A run recorded from another host cannot be
  checked from here and is an error too.
- **Orphans.** Snakemake starts in a process group of its own, with the supervisor as the
  "child subreaper" (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``) of everything below it: when
  snakemake dies, however it dies, the supervisor stops its group and every process left
  below it (SIGTERM, then SIGKILL after ``--grace`` seconds), so no job of a dead run goes on
  writing. If the supervisor itself is killed (even with its whole process group), a
  watchdog in a session of its own sees its pipe close and stops snakemake's group the same
  way. SIGINT, SIGTERM and SIGHUP sent to the supervisor are passed on to snakemake.

Then ``--rerun-incomplete`` reruns the jobs the kill interrupted, and the results equal those
of an uninterrupted run (every step is deterministic). psutil (a dependency of Snakemake)
lists the processes; the prctl calls are Linux's (elsewhere the supervisor only forwards
signals and checks locks).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
RECORD = "mtnet-run.json"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run snakemake under a supervisor (resumes after a kill: stale lock, orphaned jobs)",
        description="Run the workflow: every argument not listed here goes to snakemake "
        "(e.g. `mtnet run --cores 2 --rerun-incomplete`). A dead run's lock is cleared (never "
        "a live run's) and the jobs of a killed snakemake are stopped.",
    )
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL for a dead run's processes (10)")
    p.add_argument("--snakemake", default=None,
                   help="the snakemake program (default: the one beside this Python, else PATH)")
    p.set_defaults(func=_run, accepts_extra=True)


def _run(args) -> int:
    return supervise(list(args.extra), grace=args.grace, snakemake=args.snakemake)


# ------------------------------------------------------------------ locks


def workdir_of(argv: list[str], cwd: str | Path) -> Path:
    """The working directory of a snakemake command line: its -d/--directory, else ``cwd``."""
    for i, arg in enumerate(argv):
        for flag in ("-d", "--directory"):
            if arg == flag and i + 1 < len(argv):
                return (Path(cwd) / argv[i + 1]).resolve()
            if arg.startswith(flag + "=") and flag.startswith("--"):
                return (Path(cwd) / arg.split("=", 1)[1]).resolve()
    return Path(cwd).resolve()


def _is_snakemake(cmdline: list[str]) -> bool:
    if not cmdline:
        return False
    names = [os.path.basename(c) for c in cmdline[:2]]
    return "snakemake" in names or cmdline[1:3] == ["-m", "snakemake"]


def live_runs(workdir: Path, exclude: set[int] = frozenset()) -> list[tuple[int, str]]:
    """(pid, command) of the snakemake processes of this host working in ``workdir``, and of
    the supervisor recorded there, when alive."""
    import psutil

    workdir = Path(workdir).resolve()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = proc.info
        if info["pid"] in exclude or not _is_snakemake(info["cmdline"] or []):
            continue
        try:
            where = workdir_of(info["cmdline"], info["cwd"] or "/")
        except OSError:
            continue
        if where == workdir:
            found.append((info["pid"], " ".join(info["cmdline"])[:120]))
    record = read_record(workdir)
    if record and record.get("host") == socket.gethostname():
        pid = int(record.get("pid", 0))
        if pid not in exclude and _alive(pid, record.get("started")):
            found.append((pid, "mtnet run (recorded in .snakemake/mtnet-run.json)"))
    return found


def _alive(pid: int, started: float | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def read_record(workdir: Path) -> dict | None:
    path = Path(workdir) / ".snakemake" / RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def locked(workdir: Path) -> bool:
    locks = Path(workdir) / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


class LiveRun(RuntimeError):
    """Another run works in this directory (its lock is not ours to clear), or a dead run's
    lock could not be cleared."""


def clear_stale_lock(workdir: Path, unlock_cmd: list[str]) -> bool:
    """Clear a dead run's lock with ``snakemake --unlock``; True when there was one.

    Raises :class:`LiveRun` when a run of this host is alive there, or a run recorded from
    another host (which cannot be checked) may be.
    """
    if not locked(workdir):
        return False
    me = {os.getpid()} | {p.pid for p in _own_tree()}
    live = live_runs(workdir, exclude=me)
    if live:
        pid, cmd = live[0]
        raise LiveRun(f"another run is working in {workdir} (pid {pid}: {cmd}); wait for it to "
                      f"end, or stop it (kill {pid}) and run again")
    record = read_record(workdir)
    if record and record.get("host") not in (None, socket.gethostname()):
        raise LiveRun(f"{workdir} is locked by a run started on host {record['host']} (pid "
                      f"{record.get('pid')}), which cannot be checked from here; when it is "
                      f"over, run `snakemake --unlock` there")
    print(f"mtnet run: {workdir}/.snakemake/locks is a dead run's lock (no live snakemake "
          f"works here): clearing it", file=sys.stderr)
    done = subprocess.run(unlock_cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise LiveRun(f"snakemake --unlock failed: {' '.join(done.stderr.split())[-300:]}")
    return True


def _own_tree():
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


# ------------------------------------------------------------------ the process tree


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _child_setup():
    def setup():  # runs in the child between fork and exec
        # a shell without job control starts `cmd &` with SIGINT ignored; snakemake must hear it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return setup


# Watches the supervisor through a pipe: "done" ends it quietly; end of file (the supervisor
# died, even by SIGKILL) makes it stop snakemake's process group, SIGTERM then SIGKILL.
WATCHDOG = """
import os, signal, sys, time
group, grace = int(sys.argv[1]), float(sys.argv[2])
if sys.stdin.readline().strip() == "done":
    sys.exit(0)
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        sys.exit(0)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            sys.exit(0)
        time.sleep(0.2)
"""


def start_watchdog(group: int, grace: float) -> subprocess.Popen:
    """A process of its own session (a kill of the supervisor's process group spares it) that
    stops ``group`` when the supervisor dies."""
    return subprocess.Popen([sys.executable, "-c", WATCHDOG, str(group), str(grace)],
                            stdin=subprocess.PIPE, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_tree(group: int, grace: float, spare=frozenset()) -> list[int]:
    """Stop snakemake's process group and every process left below the supervisor (orphans
    reparented to it), but ``spare``: SIGTERM, then SIGKILL after ``grace`` seconds. Returns
    their pids."""
    import psutil

    procs = {p.pid: p for p in _own_tree() if p.pid not in spare}
    try:
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == group:
                    procs.setdefault(proc.pid, proc)
            except OSError:
                continue
    except psutil.Error:
        pass
    procs.pop(os.getpid(), None)
    for proc in procs.values():
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    _reap()
    return sorted(procs)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ------------------------------------------------------------------ the run


def _snakemake_program(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).with_name("snakemake")
    return str(beside) if beside.exists() else (shutil.which("snakemake") or "snakemake")


def supervise(argv: list[str], grace: float = 10.0, snakemake: str | None = None) -> int:
    """Run ``snakemake argv`` under the supervisor (module docstring); its exit status."""
    program = _snakemake_program(snakemake)
    workdir = workdir_of(argv, os.getcwd())
    try:
        clear_stale_lock(workdir, [program, *argv, "--unlock"])
    except LiveRun as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    proc = subprocess.Popen([program, *argv], start_new_session=True, preexec_fn=_child_setup())
    watchdog = start_watchdog(proc.pid, grace)
    record = Path(workdir) / ".snakemake" / RECORD
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        import psutil

        record.write_text(json.dumps({"pid": os.getpid(), "snakemake_pid": proc.pid,
                                      "host": socket.gethostname(),
                                      "started": psutil.Process().create_time(),
                                      "argv": argv}))
    except OSError:
        pass

    def forward(signum, _frame):
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    code = None
    try:
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        left = stop_tree(proc.pid, grace, spare={watchdog.pid})
        try:
            watchdog.stdin.write(b"done\n")
            watchdog.stdin.close()
            watchdog.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if left:
            print(f"mtnet run: snakemake ended ({_status(code)}); stopped {len(left)} "
                  f"process(es) of its run: {', '.join(map(str, left))}", file=sys.stderr)
        try:
            if read_record(workdir) and read_record(workdir).get("pid") == os.getpid():
                record.unlink()
        except OSError:
            pass
    if code < 0:
        print(f"mtnet run: snakemake was killed by signal {-code}; run the same command again "
              f"to resume", file=sys.stderr)
        return 128 - code
    return code


def _status(code) -> str:
    if code is None:
        return "interrupted"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"
