"""A real two-node Ray cluster on this machine: mbnas search joins it with --address,
survives losing the second node, and loses no trial.

Ray on Linux replaces 127.0.0.1 by the machine's outward address, so the cluster runs in
a network namespace of its own holding only the loopback interface: there Ray's own
address lookup falls back to 127.0.0.1 and nothing leaves loopback.  Both nodes and the
search join that namespace through ``nsenter``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from test_search_e2e import _wait_for, check_run_is_consistent, search_args

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")
# Token authentication (on by default in recent Ray) is for clusters across hosts.
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    # Any port will do: the namespace is empty.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def netns():
    """A private network namespace with only loopback; yields the nsenter prefix."""
    if not shutil.which("unshare") or not shutil.which("nsenter") or os.geteuid() != 0:
        pytest.skip("needs root with unshare and nsenter (util-linux) for a private netns")
    holder = subprocess.Popen(["unshare", "--net", "--", "sh", "-c",
                               "ip link set lo up && echo up && exec sleep 3600"],
                              stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "up":
        holder.kill()
        pytest.skip("cannot create a network namespace here")
    yield ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--"]
    holder.kill()
    holder.wait()


def _ray(prefix: list[str], *args: str) -> None:
    subprocess.run([*prefix, RAY, *args], check=True, env=ENV, timeout=180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _second_node_pids() -> list[int]:
    """The second node's raylet: the one started with the 'second' custom resource."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if "raylet" in line and "second" in line and "grep" not in line]


@pytest.fixture
def cluster(netns):
    # Ray's socket paths must stay short: a temp dir directly under /tmp.
    temp = tempfile.mkdtemp(prefix="mbnasray", dir="/tmp")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        _ray(netns, "start", "--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0",
             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats")
        _ray(netns, "start", f"--address={address}", "--num-cpus=1", "--num-gpus=0",
             '--resources={"second": 1}', "--disable-usage-stats")
        yield netns, address
    finally:
        subprocess.run([*netns, RAY, "stop", "--force"], env=ENV, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(temp, ignore_errors=True)


def _nodes_used(run_dir: Path) -> set[str]:
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{run_dir / 'study.db'}")
    return {t.user_attrs["node"] for t in study.trials if t.user_attrs.get("node")}


def test_search_across_two_nodes_and_survive_losing_one(cluster, tmp_path):
    netns, address = cluster
    assert len(_second_node_pids()) == 1
    args = search_args(tmp_path, "cluster", 8, "--address", address, "--concurrency", "2",
                       "--references", "none", "--inject-faults",
                       ",".join(f"{i}:slow" for i in range(1, 9)))
    proc = subprocess.Popen([*netns, sys.executable, "-m", "mbnas", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "cluster"
    try:
        def two_nodes_busy() -> bool:
            path = run_dir / "trials.csv"
            return path.exists() and len(_nodes_used(run_dir)) == 2
        _wait_for(two_nodes_busy, 300, proc)
        # Kill the second node (its raylet; its workers go with it) mid-search.
        for pid in _second_node_pids():
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    rows = check_run_is_consistent(run_dir, 8, references=())  # study and CSV agree
    finished = [r for r in rows if r["state"] in ("complete", "stopped")]
    assert len(finished) == 8, [(r["number"], r["state"], r["error"]) for r in rows]
    assert not [r for r in rows if r["state"] in ("failed", "running", "interrupted")]
    assert len(_nodes_used(run_dir)) == 2
    assert "winner" in out
