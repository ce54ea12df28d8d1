"""A real one-node SLURM cluster on this machine, for tests and for trying `--profile slurm` locally.

Uses Debian's `slurm-wlm` and `munge` (installed with apt-get when missing). Every file the daemons use
(munge key and socket, state, spool, logs) lives in one private directory. Clients find the cluster through
`SLURM_CONF` (see `LocalSlurmCluster.env`), and through a copy of slurm.conf at SLURM's default path
/etc/slurm/slurm.conf while the cluster runs: snakemake-executor-plugin-slurm removes `SLURM_*` variables
before the `srun` inside a job, which then only finds the default path. That copy is only written where no
other SLURM config exists (clusters of this helper on one machine take turns; one left behind by a killed
run is replaced), and it is removed on stop. The daemons run in the foreground as children of this process
and are stopped by their pids.

Facts this relies on (Debian SLURM 22.05, running as root): `select/cons_tres`, `proctrack/linuxproc` and
`task/none` need no cgroups; with accounting off `sacct` knows nothing, so clients must query job states
with `squeue`, which only keeps finished jobs for `MinJobAge` seconds.

    python -m ga.testing.slurm_cluster   # start one, print its partition, stop on Ctrl-C or SIGTERM
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APT_PACKAGES = ("slurm-wlm", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # where SLURM clients look when SLURM_CONF is unset
CONF_MARKER = "# written by ga.testing.slurm_cluster for pid {pid}; removed when that cluster stops\n"
CONF_MARKER_PREFIX = "# written by ga.testing.slurm_cluster"
REQUIRED_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")


@dataclasses.dataclass
class ClusterSettings:
    """Shape and timing of the local cluster.

    partition:       name of the single partition (the test override for the profile's partition).
    min_job_age_s:   how long finished jobs stay visible to `squeue` (the plugin's status source here).
    start_timeout_s: how long to wait for the node to become idle before giving up.
    claim_timeout_s: how long to wait for another live local cluster (another test run) to release
                     /etc/slurm/slurm.conf; clusters on one machine take turns.
    munge_key_bytes: size of the random munge key (munge requires at least 32).
    """

    partition: str = "local"
    min_job_age_s: int = 600
    start_timeout_s: float = 60.0
    claim_timeout_s: float = 900.0
    munge_key_bytes: int = 1024


def ensure_installed() -> None:
    """Install slurm-wlm and munge through apt-get if any of their programs is missing."""
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"SLURM programs {missing} are missing and installing them needs root: "
            f"run `apt-get install {' '.join(APT_PACKAGES)}`"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=True, env=env, stdin=subprocess.DEVNULL)
    still_missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if still_missing:
        raise RuntimeError(f"apt-get installed {APT_PACKAGES} but {still_missing} are still not on PATH")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> str:
    """`slurmd -C` prints this node's real CPUs/sockets/cores/memory; declaring more makes the node invalid."""
    out = subprocess.run(["slurmd", "-C"], check=True, capture_output=True, text=True).stdout
    first = out.splitlines()[0].split()
    return " ".join(field for field in first if not field.startswith("NodeName="))


class LocalSlurmCluster:
    """munged + slurmctld + slurmd for one node; use as a context manager or call start()/stop()."""

    def __init__(self, workdir: str | Path | None = None, settings: ClusterSettings | None = None):
        self.settings = settings or ClusterSettings()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ga-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.workdir / "slurm.conf"
        self._procs: dict[str, subprocess.Popen] = {}

    @property
    def partition(self) -> str:
        return self.settings.partition

    def env(self, base: dict | None = None) -> dict:
        """Environment in which sbatch/squeue/srun talk to this cluster."""
        return dict(os.environ if base is None else base, SLURM_CONF=str(self.conf))

    def _write_files(self) -> None:
        d = self.workdir
        for sub in ("state", "spool"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        key = d / "munge.key"
        key.write_bytes(secrets.token_bytes(self.settings.munge_key_bytes))
        key.chmod(0o400)
        lines = [
            "ClusterName=galocal",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={d / 'munge.socket'}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "ReturnToService=2",
            f"MinJobAge={self.settings.min_job_age_s}",
            f"NodeName={self.node} NodeAddr=127.0.0.1 {_node_hardware()} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text(CONF_MARKER.format(pid=os.getpid()) + "\n".join(lines) + "\n")
        self._claim_system_conf()

    def _claim_system_conf(self) -> None:
        """Create /etc/slurm/slurm.conf exclusively; wait while another live local cluster holds it."""
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.settings.claim_timeout_s
        while True:
            try:
                fd = os.open(SYSTEM_CONF, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    first_line = SYSTEM_CONF.read_text().split("\n", 1)[0]
                except FileNotFoundError:
                    continue  # released between our two looks
                if not first_line.startswith(CONF_MARKER_PREFIX):
                    raise RuntimeError(
                        f"{SYSTEM_CONF} already configures a SLURM cluster; refusing to shadow it "
                        f"with a local test cluster"
                    ) from None
                pid = re.search(r"for pid (\d+)", first_line)
                owner = int(pid.group(1)) if pid else None  # None: an older helper that did not record its pid
                if owner is not None and not _pid_alive(owner):  # left behind by a killed run
                    SYSTEM_CONF.unlink(missing_ok=True)
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{SYSTEM_CONF} still held by the local cluster of pid {owner} after "
                        f"{self.settings.claim_timeout_s} s"
                    ) from None
                time.sleep(2)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(self.conf.read_text())
            return

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.stdout", "wb")
        self._procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env()
        )
        log.close()

    def _wait(self, what: str, ready) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode} while waiting for {what}; "
                        f"logs in {self.workdir}:\n{self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(
            f"{what} not ready after {self.settings.start_timeout_s} s; logs in {self.workdir}:\n{self.logs()}"
        )

    def _node_state(self) -> str:
        out = subprocess.run(
            ["sinfo", "-h", "-n", self.node, "-o", "%T"], capture_output=True, text=True, env=self.env()
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    def start(self) -> LocalSlurmCluster:
        ensure_installed()
        self._write_files()
        d = self.workdir
        try:
            self._spawn(
                "munged",
                [
                    "munged",
                    "--foreground",
                    "--force",
                    f"--socket={d / 'munge.socket'}",
                    f"--key-file={d / 'munge.key'}",
                    f"--pid-file={d / 'munged.pid'}",
                    f"--log-file={d / 'munged.log'}",
                    f"--seed-file={d / 'munged.seed'}",
                ],
            )
            self._wait("munged", lambda: (d / "munge.socket").exists())
            self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
            self._wait(
                "slurmctld",
                lambda: (
                    subprocess.run(["scontrol", "ping"], capture_output=True, text=True, env=self.env()).stdout.count(
                        "UP"
                    )
                    > 0
                ),
            )
            self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
            self._wait(f"node {self.node} idle", lambda: self._node_state() == "idle")
        except BaseException:
            self.stop()
            raise
        return self

    def logs(self) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "munged.stdout", "slurmctld.stdout", "slurmd.stdout"):
            path = self.workdir / name
            if path.exists():
                parts.append(
                    f"--- {name} (last lines)\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:])
                )
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons this object started (by pid), slurmd first."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if SYSTEM_CONF.exists() and self.conf.exists() and SYSTEM_CONF.read_text() == self.conf.read_text():
            SYSTEM_CONF.unlink()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalSlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (`kill %1`) stops the cluster as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt()))
    with LocalSlurmCluster() as cluster:
        print(
            f"local SLURM cluster up: partition {cluster.partition!r}, config {SYSTEM_CONF} "
            f"(= {cluster.conf}); Ctrl-C or SIGTERM stops it",
            flush=True,
        )
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
