"""Readers for the deployment artifacts (Dockerfile, compose, Kubernetes manifests).

Nothing here needs docker or a cluster: the files are parsed and checked as text, YAML and
JSON schemas. Tests that run the real ``s2cvpn`` CLI skip while it is not installed.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments, as the Dockerfile parser does."""
    out: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        if current.strip():
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def parse_dockerfile(text: str) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif keyword == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return Dockerfile(args=args, stages=stages)


def exec_form(args: str) -> list[str]:
    """An ENTRYPOINT/CMD in JSON (exec) form; shell form is a failure for us."""
    assert args.startswith("["), f"not in exec form: {args}"
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def healthcheck_command(args: str) -> list[str]:
    options, sep, command = args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    return exec_form(command.strip())


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def load_env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example line is not KEY=VALUE: {line}"
        values[key.strip()] = value.strip()
    return values


_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def compose_variables(text: str) -> set[str]:
    """Names of the ${VAR} references in a compose file (``$$`` escapes excluded)."""
    text = text.replace("$$", "")
    return {m.group("name") or m.group("bare") for m in _VAR.finditer(text)}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?error}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else current  # type: ignore[return-value]
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"{name}: {arg}")
            return current
        return current or ""

    sentinel = "\x00DOLLAR\x00"
    return _VAR.sub(one, value.replace("$$", sentinel)).replace(sentinel, "$")


def load_k8s() -> list[tuple[Path, dict[str, Any]]]:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def find(docs: list[tuple[Path, dict[str, Any]]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for _, d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def cli_executable() -> Path | None:
    """The ``s2cvpn`` console script of the interpreter running the tests, if installed."""
    candidate = Path(sys.executable).parent / "s2cvpn"
    return candidate if candidate.exists() else None


def command_lines() -> list[tuple[str, list[str]]]:
    """Every s2cvpn command line the artifacts run, as (where, argv after ``s2cvpn``)."""
    lines: list[tuple[str, list[str]]] = []
    dockerfile = parse_dockerfile((ROOT / "Dockerfile").read_text())
    lines.append(("Dockerfile CMD", exec_form(dockerfile.final.last("CMD") or "[]")))
    for name, service in load_compose()["services"].items():
        if "build" in service or "s2cvpn" in str(service.get("image", "")):
            command = service.get("command")
            argv = command if isinstance(command, list) else shlex.split(command)
            lines.append((f"compose service {name}", argv))
    for path, doc in load_k8s():
        spec = doc.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if not template:
            continue
        for container in template["spec"]["containers"]:
            assert container.get("command", ["s2cvpn"]) == ["s2cvpn"], path.name
            lines.append((f"{path.name} {container['name']}", container["args"]))
    return lines
