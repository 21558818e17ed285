"""Runs ip/tc/nft/sysctl/FRR commands and translates their failures into driver errors.

Why subprocesses and not pyroute2: the toolchain measurements show ``ip -batch`` per
namespace builds a VPN in ~20 ms against ~50-85 ms for pyroute2, and a subprocess enters a
namespace itself (``ip -n``, ``ip netns exec``), so the calling thread never calls setns
and any worker thread may drive the lab. Independent namespaces are configured in
parallel (``run_many``): the kernel serialises on rtnl anyway, the win is overlapping
process start-up.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from s2cvpn.errors import DriverRejected, DriverTimeout, DriverUnavailable

NETNS_DIR = "/run/netns"
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Job:
    """One process: argv, text fed on stdin, and whether a failure is tolerated."""

    argv: tuple[str, ...]
    stdin: str = ""
    check: bool = True


def ip_batch(lines: Sequence[str], ns: str | None = None, *, force: bool = False) -> Job:
    """``ip [-n NS] [-force] -batch -``: one process for many ip commands in one namespace."""
    argv = ["ip"] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    return Job(tuple(argv), "\n".join(lines) + "\n", check=not force)


def ns_script(ns: str, script: str, *, check: bool = True) -> Job:
    """A POSIX shell script run inside namespace ``ns`` (sysctl, tc, nft in one exec)."""
    return Job(("ip", "netns", "exec", ns, "sh", "-e", "-s"), script, check=check)


def run(job: Job, *, timeout: float = TIMEOUT_S) -> str:
    return _finish(job, _start(job), timeout)


def run_many(jobs: Sequence[Job], *, timeout: float = TIMEOUT_S, width: int = 16) -> list[str]:
    """Run independent jobs concurrently (at most ``width`` at a time); raise the first error."""
    outputs: list[str] = []
    first_error: Exception | None = None
    for start in range(0, len(jobs), width):
        chunk = jobs[start : start + width]
        procs = [_start(job) for job in chunk]
        for job, proc in zip(chunk, procs):
            try:
                outputs.append(_finish(job, proc, timeout))
            except Exception as exc:  # keep reaping the others before raising
                first_error = first_error or exc
                outputs.append("")
    if first_error:
        raise first_error
    return outputs


def output(argv: Sequence[str], *, timeout: float = TIMEOUT_S, check: bool = True) -> str:
    return run(Job(tuple(argv), check=check), timeout=timeout)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_exists(ns: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, ns))


def netns_pids(namespaces: Sequence[str]) -> list[int]:
    """Processes living in any of ``namespaces`` (daemons, probes), found the way
    ``ip netns pids`` does (same net namespace inode) but in one pass over /proc."""
    wanted = set()
    for ns in namespaces:
        try:
            st = os.stat(os.path.join(NETNS_DIR, ns))
        except FileNotFoundError:
            continue
        wanted.add((st.st_dev, st.st_ino))
    if not wanted:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in wanted:
            pids.append(int(entry))
    return pids


def _start(job: Job) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
            job.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError as exc:
        raise DriverUnavailable(f"{job.argv[0]} is not installed ({exc})") from exc
    except PermissionError as exc:
        raise DriverUnavailable(f"cannot run {job.argv[0]}: {exc}") from exc


def _finish(job: Job, proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, err = proc.communicate(job.stdin, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise DriverTimeout(f"{' '.join(job.argv)} took more than {timeout:.0f} s") from exc
    if proc.returncode and job.check:
        raise _error(job, proc.returncode, err)
    return out


def _error(job: Job, code: int, stderr: str) -> Exception:
    command = " ".join(job.argv)
    detail = stderr.strip()[-2000:]
    message = f"{command} failed (exit {code}): {detail}"
    if job.stdin and len(job.stdin) < 4000:
        message += f"\n--- input ---\n{job.stdin}"
    lowered = detail.lower()
    if "operation not permitted" in lowered or "permission denied" in lowered:
        return DriverUnavailable(message)
    if "cannot open network namespace" in lowered or "no such file" in lowered:
        return DriverUnavailable(message)
    return DriverRejected(message)
