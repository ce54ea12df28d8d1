"""scripts/setup.sh's system-package step (--system-only), on a PATH made of stubs so that it runs the same on
any machine: it installs only the missing Debian packages with apt-get, and where it cannot, it stops with the
one command to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from workflow_support import REPO

SETUP = REPO / "scripts" / "setup.sh"
BASH = "/bin/bash"
PROGRAMS = ("sbatch", "slurmctld", "slurmd", "munged", "tmux", "dot", "chromium")


def stub(directory: Path, name: str, body: str = "exit 0") -> None:
    path = directory / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def system_step(bin_dir: Path) -> subprocess.CompletedProcess:
    """setup.sh --system-only with `bin_dir` as the whole PATH (the script adds sbin, where the daemons live)."""
    return subprocess.run(
        [BASH, str(SETUP), "--system-only"],
        env={"PATH": str(bin_dir), "HOME": str(bin_dir)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_nothing_is_installed_when_every_program_is_there(tmp_path):
    for program in PROGRAMS:
        stub(tmp_path, program)
    stub(tmp_path, "apt-get", f'echo "$@" >> {tmp_path}/apt-get.calls')
    result = system_step(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all present" in result.stdout and not (tmp_path / "apt-get.calls").exists()


def test_missing_packages_are_installed_with_apt_get(tmp_path):
    for program in ("sbatch", "slurmctld", "slurmd", "munged", "tmux"):
        stub(tmp_path, program)
    stub(tmp_path, "apt-get", f'echo "$@" >> {tmp_path}/apt-get.calls')  # installs nothing
    stub(tmp_path, "sudo", '[ "$1" = -n ] && shift; exec "$@"')  # sudo without a password, for a non-root user
    result = system_step(tmp_path)
    calls = (tmp_path / "apt-get.calls").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq graphviz chromium"]
    # the stub installed nothing, so the script says what is still missing instead of going on
    assert result.returncode == 1 and "still missing after apt-get: graphviz chromium" in result.stderr


def test_without_apt_get_it_stops_with_the_command_to_run(tmp_path):
    for program in ("sbatch", "slurmctld", "slurmd", "munged"):
        stub(tmp_path, program)
    result = system_step(tmp_path)
    assert result.returncode == 1
    assert "missing system packages: tmux graphviz chromium" in result.stderr
    assert "apt-get update && apt-get install -y tmux graphviz chromium" in result.stderr


def test_a_user_without_root_or_sudo_is_told_what_to_install(tmp_path):
    """As root, the script runs as user nobody (setpriv) from a stub folder nobody can read."""
    bin_dir = Path(tempfile.mkdtemp(prefix="setup-stubs-"))
    try:
        bin_dir.chmod(0o755)
        stub(bin_dir, "apt-get", "exit 0")
        stub(bin_dir, "sudo", "exit 1")  # sudo asks for a password: `sudo -n` fails
        as_user = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*as_user, BASH, str(SETUP), "--system-only"],
            env={"PATH": str(bin_dir), "HOME": str(bin_dir)},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(bin_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "install them as root" in result.stderr and "graphviz chromium" in result.stderr
