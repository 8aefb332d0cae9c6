"""CPU and memory of a server's process tree, measured from inside the server.

``GET /_lab/usage`` (served by the demo app and by the bring-your-own wrapper,
``loadtest/inserver/byo.py``) answers ``snapshot()``: so a comparison measures the server
wherever it runs -- a local process, another host, a container -- with the same
code.  The caller takes two snapshots and divides the CPU seconds between them
by the time between them.

Policy, stated once:

- The tree's root: walk up from the process answering the request while the
  parent has the same command line *and* is in the same session.  Forked workers
  and children (gunicorn's, werkzeug's, our server's) keep their parent's command
  line and session, so the walk ends at the gunicorn arbiter or the server's main
  process: at PID 1 in a container (no parent), below docker-init or a shell
  (another command line), below ``python -m loadtest.compare`` (which starts every
  local target in a session of its own) and below a test runner.  A server that
  renames its workers' process titles (gunicorn with setproctitle installed)
  would be measured from the worker alone.
- CPU: user + system seconds of every live process in the tree, plus the root's
  ``children_user``/``children_system`` (children it already reaped, e.g. a
  forking server's finished request handlers).
- Memory: the sum of PSS over the tree (``memory_full_info().pss``: a page
  shared by forked workers counts once, split between them); RSS where the OS
  gives no PSS, and ``memory_kind`` says which.
- The CPU limit, in cores, of the cgroup the server runs in (the path in
  ``/proc/self/cgroup``): cgroup v2's ``cpu.max`` ("max" = no limit), else cgroup
  v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under the cpu controller's
  mount (-1 = no limit).  Docker mounts a container's own cgroup at the mount's
  root, so the process's path is tried under the mount and then with its leading
  components dropped, down to the mount itself.  None when unlimited or unknown.
- The interpreter (``interpreter()``): implementation, version and whether the
  GIL is enabled, read in the server so a run on a free-threaded build says so.

Nothing here knows HTTP; the endpoints call ``snapshot``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # a team's environment without psutil: the same calls, read from /proc
    from . import procfs as psutil  # type: ignore[no-redef]

from .tree import members, read_each

USAGE_PATH = "/_lab/usage"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def tree_root(pid: int | None = None) -> psutil.Process:
    """The server's root process for ``pid`` (default: this process); see the module's policy."""
    proc = psutil.Process(pid or os.getpid())
    while True:
        try:
            parent = proc.parent()
            if (
                parent is None
                or parent.cmdline() != proc.cmdline()
                or os.getsid(parent.pid) != os.getsid(proc.pid)
            ):
                return proc
        except (psutil.Error, OSError):
            return proc
        proc = parent


def cpu_seconds(root: psutil.Process) -> float:
    """CPU seconds of the tree so far, including children the root has reaped."""
    total = 0.0
    for proc, t in read_each(members(root), psutil.Process.cpu_times):
        total += t.user + t.system
        if proc.pid == root.pid:
            total += t.children_user + t.children_system
    return total


def memory(root: psutil.Process) -> tuple[float | None, str]:
    """(bytes of the tree, "pss" or "rss")."""
    sizes = [size for _, size in read_each(members(root), footprint)]
    total = sum(pss if pss is not None else rss for pss, rss in sizes)
    kind = "rss" if any(pss is None for pss, _ in sizes) else "pss"
    return (float(total) if total else None), kind


def footprint(proc: psutil.Process) -> tuple[int | None, int]:
    """(PSS or None where the OS gives none or denies it, RSS) of one process."""
    try:
        info = proc.memory_full_info()
    except psutil.AccessDenied:
        return None, proc.memory_info().rss
    return getattr(info, "pss", None), info.rss


def cgroup_paths(proc_cgroup: Path = PROC_CGROUP) -> dict[str, str]:
    """Controller -> cgroup path of this process ("" for cgroup v2's unified line "0::/...")."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths.setdefault(controller, parts[2])
    return paths


def cgroup_dirs(mount: Path, path: str) -> list[Path]:
    """``path`` under ``mount``, then with its leading components dropped, down to ``mount`` itself."""
    parts = [p for p in path.split("/") if p]
    return [mount.joinpath(*parts[i:]) for i in range(len(parts) + 1)]


def cgroup_v2_limit(root: Path, path: str) -> float | None:
    """Cores from ``cpu.max`` ("200000 100000" -> 2.0); None when "max" or absent."""
    for directory in cgroup_dirs(root, path):
        try:
            quota, period = (directory / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            continue
    return None


def cgroup_v1_limit(root: Path, path: str) -> float | None:
    """Cores from ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1 = no limit); None when absent."""
    mounts = [root / "cpu", root / "cpu,cpuacct"]
    for directory in [d for mount in mounts for d in cgroup_dirs(mount, path)]:
        try:
            quota = int((directory / "cpu.cfs_quota_us").read_text())
            period = int((directory / "cpu.cfs_period_us").read_text())
            return None if quota < 0 or period <= 0 else quota / period
        except (OSError, ValueError):
            continue
    return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """Cores this process's cgroup may use, v2 or v1 (see the module's policy); None when unlimited."""
    paths = cgroup_paths(proc_cgroup)
    if "cpu" in paths:
        return cgroup_v1_limit(root, paths["cpu"])
    return cgroup_v2_limit(root, paths.get("", "/"))


def snapshot(root: psutil.Process | None = None) -> dict:
    """What ``GET /_lab/usage`` answers: a point in time of the server's tree."""
    root = root or tree_root()
    mem, kind = memory(root)
    return {
        "time": time.time(),
        "root_pid": root.pid,
        "pids": len(members(root)),
        "cpu_s": cpu_seconds(root),
        "memory_bytes": mem,
        "memory_kind": kind,
        "cgroup_cpu_limit": cgroup_cpu_limit(),
        "interpreter": interpreter(),
    }


def interpreter() -> dict:
    """Which Python runs this server: implementation, version, free-threaded build, GIL on or off, path.

    ``gil_enabled`` is ``sys._is_gil_enabled()`` where it exists (3.13+; False on
    a free-threaded build running without the GIL), else True: every older
    CPython has one.
    """
    check = getattr(sys, "_is_gil_enabled", None)
    return {
        "implementation": sys.implementation.name,
        "version": ".".join(str(part) for part in sys.version_info[:3]),
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_enabled": bool(check()) if check is not None else True,
        "executable": sys.executable,
    }


def cpu_used(before: dict, after: dict) -> float | None:
    """CPU seconds the tree used between two snapshots; None when they are of different trees (a restart)."""
    if before.get("root_pid") != after.get("root_pid"):
        return None
    return max(after["cpu_s"] - before["cpu_s"], 0.0)
