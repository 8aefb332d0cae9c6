"""The cgroup CPU limit read from fake cgroup trees (v1 and v2), as Docker lays them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.inserver.usage import cgroup_cpu_limit

V1_PROC = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_tree(tmp_path: Path, quota: str, where: str = "cpu/docker/abc") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    write(root / where / "cpu.cfs_quota_us", quota + "\n")
    write(root / where / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text(V1_PROC)
    return root, proc


def test_v1_quota_over_period_is_cores(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(*v1_tree(tmp_path, "150000")) == 1.5


def test_v1_minus_one_is_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(*v1_tree(tmp_path, "-1")) is None


def test_v1_container_sees_its_own_cgroup_at_the_mount_root(tmp_path: Path) -> None:
    # host cgroup namespace: /proc/self/cgroup names /docker/abc, the mount holds only that cgroup
    assert cgroup_cpu_limit(*v1_tree(tmp_path, "200000", where="cpu")) == 2.0


def test_v1_controller_mounted_under_its_joined_name(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(*v1_tree(tmp_path, "50000", where="cpu,cpuacct/docker/abc")) == 0.5


def test_v1_unreadable_quota_is_unknown(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(*v1_tree(tmp_path, "lots")) is None


@pytest.mark.parametrize(("cpu_max", "cores"), [("200000 100000\n", 2.0), ("max 100000\n", None)])
def test_v2_cpu_max(tmp_path: Path, cpu_max: str, cores: float | None) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu.max", cpu_max)
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/\n")
    assert cgroup_cpu_limit(root, proc) == cores


def test_v2_nested_cgroup_path(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "system.slice" / "lab.scope" / "cpu.max", "100000 100000\n")
    write(root / "cpu.max", "max 100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/system.slice/lab.scope\n")
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_no_cgroup_files_is_unknown(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "no_proc") is None
