"""The protocol core (`echoprobe.ul`, `echoprobe.dimse`) does no I/O, reads no clock and
imports no async framework or DICOM toolkit (architecture.md, rule 1).

Two independent checks: a fresh interpreter imports every module of the two packages and
looks at what got imported (transitive imports included), and every source file's AST is
scanned for such imports (including ones only reached on some code path).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import echoprobe.dimse
import echoprobe.ul

FORBIDDEN = (
    "asyncio",
    "anyio",
    "trio",
    "socket",
    "ssl",
    "time",
    "selectors",
    "pydicom",
    "pynetdicom",
)
PACKAGES = (echoprobe.ul, echoprobe.dimse)

# Run in a fresh interpreter. The interpreter itself may have imported some of these at
# start-up (`time`, through zipimport), so they are dropped from sys.modules first: any that
# comes back was imported by our modules.
_PROBE = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[2])
forbidden = set(sys.argv[1].split(","))
for name in [m for m in sys.modules if m.split(".")[0] in forbidden]:
    del sys.modules[name]
imported = []
for package_name in ("echoprobe.ul", "echoprobe.dimse"):
    package = importlib.import_module(package_name)
    imported.append(package_name)
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
offending = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
origin = importlib.import_module("echoprobe").__file__
print(json.dumps({"imported": imported, "offending": offending, "origin": origin}))
"""


def _source_files() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        for directory in package.__path__:
            files += sorted(Path(directory).rglob("*.py"))
    return files


def test_importing_the_core_imports_nothing_forbidden() -> None:
    package_dir = Path(echoprobe.ul.__path__[0]).parent
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, ",".join(FORBIDDEN), str(package_dir.parent)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(result.stdout)
    assert report["offending"] == []
    assert Path(report["origin"]).parent == package_dir  # the sources under test
    # Every source file was imported (so a new module is covered without editing this test).
    modules = {
        ".".join(path.with_suffix("").parts[-2:]).removesuffix(".__init__")
        for path in _source_files()
    }
    assert {f"echoprobe.{name}" for name in modules} == set(report["imported"])


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            # __import__("x") and importlib.import_module("x") with a literal name.
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in ("__import__", "import_module") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append((node.lineno, first.value))
    return found


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_source_has_no_forbidden_import(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(line, name) for line, name in _imports(tree) if name.split(".")[0] in FORBIDDEN]
    assert bad == []


def test_the_scanner_finds_forbidden_imports() -> None:
    # Guard against a scanner that silently finds nothing.
    source = (
        "import os, time\n"
        "from asyncio import sleep\n"
        "def f():\n"
        "    import ssl\n"
        "    __import__('socket')\n"
        "    importlib.import_module('pydicom.uid')\n"
    )
    names = {name.split(".")[0] for _, name in _imports(ast.parse(source))}
    assert set(FORBIDDEN) & names == {"time", "asyncio", "ssl", "socket", "pydicom"}


def test_the_probe_sees_a_forbidden_import() -> None:
    # The subprocess check must notice `time` even though the interpreter preloads it.
    probe = (
        "import sys\n"
        "[sys.modules.pop(m) for m in list(sys.modules) if m == 'time']\n"
        "import json\n"
        "print('time' in sys.modules)\n"
        "import time\n"
        "print('time' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True"]
