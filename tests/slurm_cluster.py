"""A real single-node Slurm for the tests: munged, slurmctld and slurmd on this machine.

Debian's packages (``munge``, ``slurmctld``, ``slurmd``, ``slurm-client``, 22.05) installed by
``tools/setup.sh``. Everything the daemons write (state, spool, pid files, logs, the munge
socket) lives in one temporary folder; only ``/etc/slurm/slurm.conf`` and
``/etc/slurm/gres.conf`` must sit at their standard place (the job-step plugin drops
``SLURM_*`` variables, so ``SLURM_CONF`` elsewhere breaks jobs): any file already there is
backed up and put back by :meth:`SlurmCluster.stop`.

The node declares the machine's CPUs and (most of) its memory, and one *fake* GPU
(``gres/gpu``, count 1, no device file), so that jobs requesting ``--gpus=1`` are
scheduled exactly as on a GPU cluster and run on the CPU.

Set MTNET_KEEP_SLURM=1 to keep that folder (daemon logs) after the tests.

Every command runs under ``timeout -k 10 N``; the daemons are stopped by the PIDs in their
pid files, never by name. Use :func:`unavailable` first: it says why a cluster cannot be
started here (not root, a binary missing, a Slurm already running).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONF_DIR = Path("/etc/slurm")
CONF_FILES = ("slurm.conf", "gres.conf")
BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "sbatch", "scancel", "scontrol", "runuser", "timeout")
SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
PARTITION = "debug"


class SlurmError(RuntimeError):
    """The cluster did not start, or a Slurm command failed or hung."""


def which(name: str) -> str | None:
    """Like shutil.which, also looking in the sbin folders (absent from some PATHs)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def unavailable() -> str | None:
    """Why a single-node Slurm cannot be started on this machine, or None if it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root (the cluster test runs in CI as root)"
    missing = [b for b in BINARIES if which(b) is None]
    if missing:
        return (
            f"Slurm/munge binaries absent: {', '.join(missing)} "
            "(Debian: apt-get install slurmctld slurmd slurm-client munge; tools/setup.sh does it)"
        )
    if not Path("/etc/munge/munge.key").exists():
        return "no munge key at /etc/munge/munge.key (the Debian munge package creates it)"
    for port in (SLURMCTLD_PORT, SLURMD_PORT):
        if _port_in_use(port):
            return f"a Slurm daemon already listens on port {port}: not starting a second one"
    return None


def machine_cpus() -> int:
    return os.cpu_count() or 1


def machine_memory_mb() -> int:
    """Memory to declare for the node: 90 % of MemTotal (slurmd refuses a node that claims
    more than it has)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.9)
    raise SlurmError("MemTotal missing from /proc/meminfo")


def run(cmd: list[str], timeout: int = 30, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command under ``timeout -k 10 <timeout>``: a hang fails instead of stalling."""
    full = ["timeout", "-k", "10", str(timeout), *cmd]
    result = subprocess.run(full, capture_output=True, text=True, timeout=timeout + 20, **kwargs)
    if result.returncode in (124, 137):
        raise SlurmError(f"timed out after {timeout} s: {' '.join(cmd)}")
    if check and result.returncode != 0:
        raise SlurmError(
            f"{' '.join(cmd)} exited {result.returncode}: {(result.stderr or result.stdout).strip()}"
        )
    return result


class SlurmCluster:
    """One node ``localhost`` in partition ``debug``; start with :meth:`start`, stop with
    :meth:`stop` (also usable as a context manager)."""

    def __init__(self, root: Path | None = None, cpus: int | None = None, memory_mb: int | None = None):
        # munged runs as user munge and must reach its socket folder: the default root is a
        # fresh folder directly under the system temp folder (removed again by stop())
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="mtnet-slurm-"))
        self.cpus = cpus or machine_cpus()
        self.memory_mb = memory_mb or machine_memory_mb()
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.munge_dir / "munge.socket"
        self.state = self.root / "state"
        self.spool = self.root / "spool"
        self.logs = self.root / "log"
        self.run_dir = self.root / "run"
        self.ctld_log = self.logs / "slurmctld.log"
        self.slurmd_log = self.logs / "slurmd.log"
        self.jobcomp_log = self.logs / "jobcomp.txt"
        self.pid_files = {
            "slurmd": self.run_dir / "slurmd.pid",
            "slurmctld": self.run_dir / "slurmctld.pid",
            "munged": self.munge_dir / "munged.pid",
        }
        self._backups: dict[Path, Path | None] = {}
        self._running = False
        self.start_seconds: float | None = None

    # ------------------------------------------------------------------ configuration

    def slurm_conf(self) -> str:
        return "\n".join([
            "# written by tests/slurm_cluster.py for one test session; restored afterwards",
            "ClusterName=local",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            # a plain-text record of every finished job (id, state, exit code): the history
            # the tests read, since there is no slurmdbd for sacct
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_log}",
            "MpiDefault=none",
            "DefMemPerCPU=500",
            "ReturnToService=2",
            # finished jobs stay visible to `squeue --states=all` (the status command, and the
            # tests' record of which rule each job ran) this long: longer than any test run
            "MinJobAge=3600",
            "SchedulerParameters=sched_interval=1",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"SlurmctldLogFile={self.ctld_log}",
            f"SlurmdLogFile={self.slurmd_log}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}",
            f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"StateSaveLocation={self.state}",
            f"SlurmdSpoolDir={self.spool}",
            f"SlurmctldPort={SLURMCTLD_PORT}",
            f"SlurmdPort={SLURMD_PORT}",
            "GresTypes=gpu",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
            "Gres=gpu:1 State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    @staticmethod
    def gres_conf() -> str:
        # a GPU without a device file: scheduled and counted, nothing bound (the jobs use the CPU)
        return "AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null Count=1\n"

    def _install_conf(self, name: str, text: str) -> None:
        target = CONF_DIR / name
        backup = None
        if target.exists() or target.is_symlink():
            backup = self.root / f"{name}.orig"
            shutil.copy2(target, backup, follow_symlinks=False)
        self._backups[target] = backup
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def _restore_conf(self) -> None:
        for target, backup in self._backups.items():
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                shutil.copy2(backup, target, follow_symlinks=False)
        self._backups.clear()

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: int = 60) -> "SlurmCluster":
        t0 = time.perf_counter()
        self._running = True
        # also stopped when the test process ends without tearing down (an interrupted run)
        atexit.register(self.stop)
        for d in (self.state, self.spool, self.logs, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        try:
            self._start_munge()
            self._install_conf("slurm.conf", self.slurm_conf())
            self._install_conf("gres.conf", self.gres_conf())
            run([which("slurmctld")], timeout=30)
            self._wait_for_pid("slurmctld", timeout=15)
            run([which("slurmd"), "-N", "localhost"], timeout=30)
            self._wait_for_pid("slurmd", timeout=15)
            self.wait_idle(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def _start_munge(self) -> None:
        self.munge_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.munge_dir, 0o755)
        shutil.chown(self.munge_dir, "munge", "munge")
        run(
            ["runuser", "-u", "munge", "--", which("munged"),
             f"--socket={self.munge_socket}",
             f"--pid-file={self.pid_files['munged']}",
             f"--log-file={self.munge_dir / 'munged.log'}",
             f"--seed-file={self.munge_dir / 'munged.seed'}"],
            timeout=20,
        )
        self._wait_for_pid("munged", timeout=10)
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if time.monotonic() > deadline:
                raise SlurmError(f"munged started but no socket at {self.munge_socket}")
            time.sleep(0.05)

    def _wait_for_pid(self, daemon: str, timeout: float) -> int:
        path = self.pid_files[daemon]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid(daemon)
            if pid is not None and _alive(pid):
                return pid
            time.sleep(0.05)
        raise SlurmError(f"{daemon} wrote no live pid to {path} within {timeout} s; {self.log_tail()}")

    def pid(self, daemon: str) -> int | None:
        try:
            text = self.pid_files[daemon].read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def wait_idle(self, timeout: float = 60) -> None:
        """Until ``sinfo`` shows the node idle."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            result = run(["sinfo", "-h", "-N", "-o", "%T"], timeout=10, check=False)
            last = (result.stdout + result.stderr).strip()
            if result.returncode == 0 and last == "idle":
                return
            time.sleep(0.2)
        raise SlurmError(f"node not idle within {timeout} s (sinfo: {last!r}); {self.log_tail()}")

    def stop(self) -> None:
        """Cancel what is left, stop the daemons by their pid files, restore /etc/slurm."""
        if not self._running:
            return
        self._running = False
        atexit.unregister(self.stop)
        if self.pid("slurmctld") and _alive(self.pid("slurmctld")):
            try:
                run(["scancel", "--full", "--partition", PARTITION], timeout=15, check=False)
            except SlurmError:
                pass
        for daemon in ("slurmd", "slurmctld", "munged"):
            pid = self.pid(daemon)
            if pid is not None:
                _terminate(pid)
        self._restore_conf()
        if self._own_root and not os.environ.get("MTNET_KEEP_SLURM"):
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in (self.ctld_log, self.slurmd_log):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"{path.name}:\n" + "\n".join(tail))
        return "\n".join(parts) or "no daemon logs yet"

    def submitted_job_ids(self) -> set[str]:
        """Ids of every batch job slurmctld accepted (from its log)."""
        text = self.ctld_log.read_text(errors="replace")
        return set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text))

    def finished_jobs(self) -> dict[str, dict[str, str]]:
        """Every finished job from the jobcomp record: id -> its fields (JobState, ExitCode...)."""
        jobs = {}
        if self.jobcomp_log.exists():
            for line in self.jobcomp_log.read_text(errors="replace").splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in fields:
                    jobs[fields["JobId"]] = fields
        return jobs

    def job_record(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``: every field of one job (kept MinJobAge seconds after its end)."""
        result = run(["scontrol", "-o", "show", "job", job_id], timeout=15)
        return dict(re.findall(r"(\w+)=(\S*)", result.stdout))

    def queue_history(self) -> dict[str, dict[str, str]]:
        """``squeue --states=all``: id -> state, comment (rule and wildcards), gres, exit code."""
        result = run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k|%b|%j"], timeout=15)
        history = {}
        for line in result.stdout.splitlines():
            job_id, state, comment, tres, name = line.split("|", 4)
            history[job_id] = {"state": state, "comment": comment, "gres": tres, "name": name}
        return history


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _terminate(pid: int, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: this one process, by its id."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
