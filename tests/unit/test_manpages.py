"""Man pages and shell completions: generated from the option tables, up to date, valid, and
installed with the wheel so that `man echoscu` works."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARE = ROOT / "share"
PROGRAMS = ("echoscu", "echoprobe", "check_dicom")


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "tools" / "manpages.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("manpages", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_share_is_generated_from_the_current_options(tmp_path: Path) -> None:
    tool = _tool()
    assert tool.main(["--out", str(tmp_path)]) == 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            committed = ROOT / path.relative_to(tmp_path)
            assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
                f"{committed} is out of date: run python tools/manpages.py"
            )
    assert tool.main(["--check"]) == 0


@pytest.mark.parametrize("program", PROGRAMS)
def test_man_pages_render_without_warnings(program: str) -> None:
    if shutil.which("man") is None:
        pytest.skip("man is not installed")
    page = SHARE / "man" / "man1" / f"{program}.1"
    done = subprocess.run(
        ["man", "--warnings", "-l", str(page)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""
    assert program in done.stdout


def test_the_pages_document_what_users_look_up() -> None:
    echoscu = (SHARE / "man" / "man1" / "echoscu.1").read_text(encoding="utf-8")
    for option in ("\\-\\-timeout", "\\-to", "\\-\\-acse\\-timeout", "\\-\\-repeat", "+tls"):
        assert option in echoscu
    echoprobe = (SHARE / "man" / "man1" / "echoprobe.1").read_text(encoding="utf-8")
    for section in ("ECHOPROBE SWEEP", "ECHOPROBE LOAD", "ECHOPROBE SCP", "ECHOPROBE CHECK"):
        assert section in echoprobe
    assert "\\-\\-no\\-live" not in echoprobe.split("ECHOPROBE SWEEP")[1].split(".SH")[0]


def _complete(program: str, *words: str) -> list[str]:
    """What bash offers for `program words...` (the last word is being completed)."""
    script = SHARE / "bash-completion" / "completions" / program
    line = " ".join((program, *words))
    probe = (
        f"source {script}\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words)}; COMP_LINE='{line}'\n"
        f"_{program}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("program", PROGRAMS)
def test_bash_completion_parses(program: str) -> None:
    script = SHARE / "bash-completion" / "completions" / program
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_bash_completion_offers_commands_and_their_options() -> None:
    assert _complete("echoprobe", "sw") == ["sweep"]
    assert "--connect-timeout" in _complete("echoprobe", "sweep", "--conn")
    assert "--no-live" not in _complete("echoprobe", "sweep", "--no")  # hidden old name
    assert "-aet" in _complete("echoscu", "-ae")
    assert "--timeout" in _complete("check_dicom", "--ti")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completions_parse(shell: str) -> None:
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    for program in PROGRAMS:
        script = (
            SHARE / "zsh" / "site-functions" / f"_{program}"
            if shell == "zsh"
            else SHARE / "fish" / "vendor_completions.d" / f"{program}.fish"
        )
        done = subprocess.run([binary, "-n", str(script)], capture_output=True, check=False)
        assert done.returncode == 0, done.stderr


def test_the_wheel_installs_the_man_pages(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None or shutil.which("man") is None:
        pytest.skip("needs uv (to build the wheel) and man")
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("echoprobe-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    installed = subprocess.run(
        [uv, "pip", "install", "--python", str(env_dir / "bin" / "python"), "--no-deps",
         str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    for program in PROGRAMS:
        assert (env_dir / "share" / "man" / "man1" / f"{program}.1").is_file()
        assert (env_dir / "share" / "bash-completion" / "completions" / program).is_file()
    found = subprocess.run(
        ["man", "-w", "echoscu"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert found.stdout.strip() == str(env_dir / "share" / "man" / "man1" / "echoscu.1")
    assert sys.prefix != str(env_dir)
