"""The wheel's commands: `echoprobe` and `check_dicom` as entry points, `echoscu` and
`echoprobe-echoscu` as launcher scripts that a pip install keeps free of `re` (hatch_build.py);
ECHOPROBE_NO_ECHOSCU=1 at build time leaves the `echoscu` name to DCMTK's."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = {"echoscu", "echoprobe-echoscu"}


def _wheel(tmp_path: Path, **env: str) -> Path:
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
    return next(out.glob("echoprobe-*.whl"))


def _commands(wheel: Path) -> tuple[set[str], set[str]]:
    """(entry points, scripts) of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry).decode()
        scripts = {n.rsplit("/", 1)[1] for n in names if ".data/scripts/" in n}
        for name in names:
            if ".data/scripts/" in name:
                assert archive.read(name).startswith(b"#!python\n"), name
    entry_points = {line.split("=")[0].strip() for line in text.splitlines() if "=" in line}
    return entry_points, scripts


def test_a_default_build_installs_echoscu_and_its_unshadowing_alias(tmp_path: Path) -> None:
    entry_points, scripts = _commands(_wheel(tmp_path, ECHOPROBE_NO_ECHOSCU=""))
    assert entry_points == {"echoprobe", "check_dicom"}
    assert scripts == LAUNCHERS


def test_echoprobe_no_echoscu_leaves_the_name_to_dcmtk(tmp_path: Path) -> None:
    entry_points, scripts = _commands(_wheel(tmp_path, ECHOPROBE_NO_ECHOSCU="1"))
    assert entry_points == {"echoprobe", "check_dicom"}
    assert scripts == {"echoprobe-echoscu"}


def test_a_pip_installed_echoscu_starts_without_re(tmp_path: Path) -> None:
    """pip writes entry-point launchers with `import re` (~5 ms); ours are scripts."""
    wheel = _wheel(tmp_path, ECHOPROBE_NO_ECHOSCU="")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # No dependencies: echoscu's plain path needs only the standard library.
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, timeout=300, capture_output=True)
    for name in sorted(LAUNCHERS):
        script = env_dir / "bin" / name
        assert script.read_text().startswith(f"#!{python}"), name
        run = subprocess.run(
            [str(python), "-X", "importtime", str(script), "-to", "1", "127.0.0.1", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        assert run.returncode == 1
        assert "Connection refused" in run.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()}
        assert not {"re", "enum", "functools"} & imported, name
