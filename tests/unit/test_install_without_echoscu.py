"""ECHOPROBE_NO_ECHOSCU=1 at build time leaves the `echoscu` name to DCMTK's."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _scripts(tmp_path: Path, **env: str) -> set[str]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv to build the wheel")
    out = tmp_path / "dist"
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wheel = next(out.glob("echoprobe-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(name).decode()
    return {line.split("=")[0].strip() for line in text.splitlines() if "=" in line}


def test_a_default_build_installs_echoscu_and_its_unshadowing_alias(tmp_path: Path) -> None:
    scripts = _scripts(tmp_path, ECHOPROBE_NO_ECHOSCU="")
    assert scripts == {"echoscu", "echoprobe-echoscu", "echoprobe", "check_dicom"}


def test_echoprobe_no_echoscu_leaves_the_name_to_dcmtk(tmp_path: Path) -> None:
    scripts = _scripts(tmp_path, ECHOPROBE_NO_ECHOSCU="1")
    assert scripts == {"echoprobe-echoscu", "echoprobe", "check_dicom"}
