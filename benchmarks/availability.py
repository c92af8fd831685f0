"""Which clients exist on this machine; a missing one is reported "not available", not an error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmarks.common import ROOT

DCMTK_ECHOSCU = Path("/usr/bin/echoscu")
OUR_ECHOSCU = ROOT / ".venv" / "bin" / "echoscu"


def dcmtk() -> bool:
    return DCMTK_ECHOSCU.exists()


def pynetdicom() -> bool:
    return importlib.util.find_spec("pynetdicom") is not None
