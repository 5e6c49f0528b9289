"""`executor: ray` joining a cluster started as a user starts one (`ray start --head`), through
`evaluate.ray_address`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.stages.evaluate import run as evaluate
from tests.cluster.conftest import OBJECT_STORE, digests, tiny_params

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.soak]

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def head() -> str:
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")  # token auth, Ray's default for a new cluster
    start = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--object-store-memory={OBJECT_STORE}"]
    subprocess.run(start, env=env, check=True, capture_output=True)
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop"], env=env, check=True, capture_output=True)


def test_a_run_joined_to_a_ray_start_cluster_gives_byte_identical_outputs(head: str, digits: Path, reference: dict[str, str], tmp_path: Path) -> None:
    """`auto`: the cluster started on this machine. (An explicit `host:port` takes the same path,
    plus RAY_AUTH_MODE=token set before ray is imported: see docs/cluster.md.)"""
    assert not ray.is_initialized()
    evaluate(tiny_params(executor="ray", ray_address="auto"), digits, tmp_path / "reports", show_progress=False)
    assert digests(tmp_path / "reports") == reference
    assert not ray.is_initialized()  # disconnected; the cluster stays up for other runs
    assert subprocess.run([RAY, "status", f"--address={head}"], env=dict(os.environ, RAY_AUTH_MODE="token"), capture_output=True).returncode == 0
