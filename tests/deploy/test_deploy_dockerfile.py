"""The Dockerfile and .dockerignore, checked without docker.

Parses the Dockerfile (continuations, exec forms, stages), checks the contract the other
artifacts rely on (entrypoint, command, port, user, health check), replays the
.dockerignore rules to prove the build context holds what ``pip install .`` needs and
nothing else, and runs the HEALTHCHECK command against a stub HTTP server.
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .artifacts import ROOT, Dockerfile, exec_form, healthcheck_command, parse_dockerfile

UID = 10001


@pytest.fixture
def dockerfile() -> Dockerfile:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_parser_handles_continuations_and_comments() -> None:
    parsed = parse_dockerfile(
        "ARG BASE=python:3.11-slim\nFROM ${BASE} AS one\n# note\nRUN a \\\n  # inner comment\n  && b\n"
        "FROM one\nCMD [\"x\"]\n"
    )
    assert [s.base for s in parsed.stages] == ["python:3.11-slim", "one"]
    assert parsed.stages[0].all("RUN") == ["a && b"]
    assert exec_form(parsed.final.last("CMD") or "") == ["x"]


def test_multi_stage_on_python_311_slim(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    named = {s.name for s in dockerfile.stages}
    for stage in dockerfile.stages:
        assert stage.base == "python:3.11-slim" or stage.base in named, stage.base
    # the final stage copies the installed environment from an earlier stage, nothing else
    copies = dockerfile.final.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), copies


def test_build_stage_installs_the_project_from_its_own_files(dockerfile: Dockerfile) -> None:
    build = dockerfile.stages[0]
    runs = " && ".join(build.all("RUN"))
    assert re.search(r"pip install (\S+ )*\.(\s|$)", runs), runs
    copied = [part for c in build.all("COPY") for part in c.split()[:-1] if not part.startswith("--")]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
    assert {"pyproject.toml", "src"} <= set(copied)


def test_entrypoint_cmd_and_port(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    assert exec_form(final.last("ENTRYPOINT") or "") == ["s2cvpn"]
    assert exec_form(final.last("CMD") or "") == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "8080" in (final.last("EXPOSE") or "").split()


def test_runs_as_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    user = final.last("USER") or ""
    assert user == f"{UID}:{UID}", "numeric USER lets Kubernetes check runAsNonRoot"
    runs = " ".join(final.all("RUN"))
    assert f"--uid {UID}" in runs and f"--gid {UID}" in runs
    # the USER line comes after every RUN, so nothing else runs as root later
    keywords = [kw for kw, _ in final.instructions]
    assert "RUN" not in keywords[keywords.index("USER"):]


def test_healthcheck_uses_python_on_live_endpoint(dockerfile: Dockerfile) -> None:
    command = healthcheck_command(dockerfile.final.last("HEALTHCHECK") or "")
    assert command[0] == "python" and "/health/live" in command[-1]
    assert "127.0.0.1:8080" in command[-1]


def test_no_secrets_baked_in(dockerfile: Dockerfile) -> None:
    text = (ROOT / "Dockerfile").read_text()
    for stage in dockerfile.stages:
        for kw, args in stage.instructions:
            if kw in ("ENV", "ARG", "LABEL"):
                assert not re.search(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY|DATABASE_URL|ISSUER)", args, re.I), args
    assert not re.search(r"\w+://[^/\s:@]+:[^@\s]+@", text), "credentials in a URL"


# --- .dockerignore -----------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def _rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((include, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    keep = True
    for include, regex in rules:
        if any(regex.match(c) for c in candidates):
            keep = include
    return keep


def _tree(top: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
        for name in filenames:
            yield (Path(dirpath) / name).relative_to(ROOT).as_posix()


def test_dockerignore_matcher_semantics() -> None:
    rules = [(False, _pattern_regex("*")), (True, _pattern_regex("src")), (False, _pattern_regex("**/__pycache__"))]
    assert in_context("src/a/b.py", rules)
    assert not in_context("src/a/__pycache__/b.pyc", rules)
    assert not in_context("tests/x.py", rules)


def test_build_context_has_what_pip_install_needs() -> None:
    rules = _rules()
    for needed in ("pyproject.toml", "README.md"):
        assert in_context(needed, rules), needed
    sources = [p for p in _tree(ROOT / "src") if "__pycache__" not in p and ".egg-info" not in p]
    assert sources, "no project sources found"
    missing = [p for p in sources if not in_context(p, rules)]
    assert not missing, f"left out of the build context: {missing[:10]}"


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", ".git/HEAD", "tests/deploy/test_deploy_dockerfile.py", "deploy/.env",
     "deploy/compose.yaml", "s2cvpn.db", "src/s2cvpn/__pycache__/x.cpython-311.pyc",
     "src/s2cvpn.egg-info/PKG-INFO", "bench/run.py"],
)
def test_build_context_leaves_out(path: str) -> None:
    assert not in_context(path, _rules())


# --- HEALTHCHECK command ---------------------------------------------------------------


class _Stub(http.server.BaseHTTPRequestHandler):
    statuses: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = self.statuses.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[int, dict[str, int]]]:
    statuses: dict[str, int] = {}
    handler = type("Handler", (_Stub,), {"statuses": statuses})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()


def _run_probe(command: list[str], port: int) -> int:
    assert command[0] == "python"
    code = command[-1].replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    assert code != command[-1]
    return subprocess.run([sys.executable, *command[1:-1], code], timeout=20, capture_output=True).returncode


def test_healthcheck_command_passes_on_200_and_fails_otherwise(
    dockerfile: Dockerfile, stub_server: tuple[int, dict[str, int]]
) -> None:
    port, statuses = stub_server
    command = healthcheck_command(dockerfile.final.last("HEALTHCHECK") or "")
    statuses["/health/live"] = 200
    assert _run_probe(command, port) == 0
    statuses["/health/live"] = 503
    assert _run_probe(command, port) != 0


def test_healthcheck_command_fails_when_nothing_listens(dockerfile: Dockerfile) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = healthcheck_command(dockerfile.final.last("HEALTHCHECK") or "")
    assert _run_probe(command, port) != 0
