"""The commands the deployment artifacts run, run for real (without docker).

Every command line in the Dockerfile, compose.yaml and the Kubernetes manifests must name
a real ``s2cvpn`` subcommand with options it accepts, and the image's entrypoint command
must come up healthy when run directly: ``s2cvpn migrate`` then ``s2cvpn serve`` on a temp
SQLite database and a free port, polled on /health/ready. These skip while the ``s2cvpn``
console script is not installed in the interpreter's environment.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .artifacts import DEPLOY, ROOT, command_lines, exec_form, healthcheck_command, load_compose, parse_dockerfile

# S2CVPN_DEPLOY_TEST_CLI points these tests at another installation (e.g. a virtualenv
# built the way the Dockerfile builds /opt/s2cvpn); by default, the project's .venv.
CLI = Path(os.environ.get("S2CVPN_DEPLOY_TEST_CLI") or ROOT / ".venv" / "bin" / "s2cvpn")
if not CLI.exists():
    CLI = Path(sys.executable).parent / "s2cvpn"
needs_cli = pytest.mark.skipif(not CLI.exists(), reason="the s2cvpn CLI is not installed yet")
READY_TIMEOUT = 30.0


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2CVPN_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")  # help text unwrapped, no colour codes
    env.update(extra)
    return env


@functools.cache
def _help(*words: str) -> subprocess.CompletedProcess[str]:
    """``s2cvpn WORDS --help``, once per subcommand (each start imports the whole service)."""
    return subprocess.run([str(CLI), *words, "--help"], capture_output=True, text=True, timeout=60,
                          env=_clean_env())


def _subcommand(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split an argv after ``s2cvpn`` into (subcommand words, options)."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return words, [a.split("=")[0] for a in argv[len(words):] if a.startswith("--")]


def test_command_lines_are_collected() -> None:
    where = [w for w, _ in command_lines()]
    assert "Dockerfile CMD" in where
    assert {"compose service migrate", "compose service api", "compose service worker"} <= set(where)
    assert {"api-deployment.yaml api", "worker-deployment.yaml worker", "migrate-job.yaml migrate"} <= set(where)


@needs_cli
@pytest.mark.parametrize("subcommand", ["serve", "worker", "migrate"])
def test_subcommand_help(subcommand: str) -> None:
    result = _help(subcommand)
    assert result.returncode == 0, result.stderr
    if subcommand == "serve":
        for option in ("--host", "--port", "--no-worker"):
            assert option in result.stdout, option


@needs_cli
@pytest.mark.parametrize("where,argv", command_lines(), ids=[w for w, _ in command_lines()])
def test_artifact_commands_exist(where: str, argv: list[str]) -> None:
    words, options = _subcommand(argv)
    assert words, f"{where}: no subcommand in {argv}"
    result = _help(*words)
    assert result.returncode == 0, f"{where}: s2cvpn {' '.join(words)} --help failed: {result.stderr}"
    for option in options:
        assert option in result.stdout, f"{where}: {option} not accepted by s2cvpn {' '.join(words)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stop(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail("did not stop within 15 s of SIGTERM")
    return process.returncode


@pytest.fixture
def service_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = _clean_env(
        S2CVPN_DATABASE_URL=f"sqlite:///{tmp_path / 's2cvpn.db'}",
        S2CVPN_INVENTORY=str(DEPLOY / "inventory.example.yaml"),
        S2CVPN_DRIVER="model",
    )
    result = subprocess.run([str(CLI), "migrate"], env=env, capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, f"s2cvpn migrate failed:\n{result.stdout}\n{result.stderr}"
    yield env


def _serve_commands() -> list[tuple[str, list[str]]]:
    docker_cmd = exec_form(parse_dockerfile((ROOT / "Dockerfile").read_text()).final.last("CMD") or "")
    api = load_compose()["services"]["api"]["command"]
    return [("image CMD", docker_cmd), ("api replica", api)]


@needs_cli
@pytest.mark.parametrize("name,argv", _serve_commands(), ids=[n for n, _ in _serve_commands()])
def test_serve_command_comes_up_ready(name: str, argv: list[str], service_env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    argv = list(argv)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    base = f"http://127.0.0.1:{port}"
    env = {**service_env, "S2CVPN_PUBLIC_URL": base}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([str(CLI), *argv], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        status = None
        while time.monotonic() < deadline:
            assert process.poll() is None, f"exited early:\n{(tmp_path / 'serve.log').read_text()}"
            try:
                status, _ = _get(f"{base}/health/ready")
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, f"/health/ready not 200 within {READY_TIMEOUT} s (last {status}):\n" + (
            tmp_path / "serve.log"
        ).read_text()
        assert _get(f"{base}/health/live")[0] == 200
        status, body = _get(f"{base}/metrics")
        assert status == 200 and b"# TYPE" in body
        # the image's HEALTHCHECK command, pointed at this port
        probe = healthcheck_command(parse_dockerfile((ROOT / "Dockerfile").read_text()).final.last("HEALTHCHECK") or "")
        code = probe[-1].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        assert subprocess.run([sys.executable, *probe[1:-1], code], timeout=20).returncode == 0
    finally:
        returncode = _stop(process)
        log.close()
    assert returncode in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()


def _worker_commands() -> list[tuple[str, list[str]]]:
    return [(where, argv) for where, argv in command_lines() if argv[0] == "worker"]


@needs_cli
@pytest.mark.parametrize("where,argv", _worker_commands(), ids=[w for w, _ in _worker_commands()])
def test_worker_command_runs_until_stopped_and_serves_its_metrics(
    where: str, argv: list[str], service_env: dict[str, str], tmp_path: Path
) -> None:
    """The worker of the compose file and of the Kubernetes manifest, on a free port: its
    notification and job metrics are what Prometheus scrapes from it."""
    port = _free_port()
    argv = list(argv)
    argv[argv.index("--metrics-host") + 1] = "127.0.0.1"
    argv[argv.index("--metrics-port") + 1] = str(port)
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen([str(CLI), *argv], env=service_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + READY_TIMEOUT, b""
        while time.monotonic() < deadline and b"s2cvpn_sinks_failing" not in body:
            assert process.poll() is None, f"worker exited:\n{(tmp_path / 'worker.log').read_text()}"
            try:
                body = _get(f"http://127.0.0.1:{port}/metrics")[1]
            except OSError:
                time.sleep(0.2)
        assert b"# TYPE s2cvpn_sinks_failing gauge" in body, body[-2000:]
        assert b"# TYPE s2cvpn_notifications_total counter" in body
        assert b"s2cvpn_notification_posts_in_flight 0.0" in body  # idle: nothing to post
        assert process.poll() is None, f"worker exited:\n{(tmp_path / 'worker.log').read_text()}"
    finally:
        returncode = _stop(process)
        log.close()
    assert returncode in (0, -signal.SIGTERM), (tmp_path / "worker.log").read_text()
