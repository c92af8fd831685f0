"""Build-time choice of the console scripts (hatchling metadata hook, pyproject.toml).

echoprobe's `echoscu` is a drop-in for DCMTK's, so an environment whose bin/ comes first on
the PATH shadows DCMTK's. Building with ECHOPROBE_NO_ECHOSCU=1 leaves the `echoscu` name out;
the same program stays reachable as `echoprobe-echoscu`, which every build installs:

    ECHOPROBE_NO_ECHOSCU=1 pip install --no-binary echoprobe echoprobe
    ECHOPROBE_NO_ECHOSCU=1 uv tool install --no-binary-package echoprobe echoprobe
"""

from __future__ import annotations

import os
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

SCRIPTS = {
    "echoscu": "echoprobe.cli.echoscu:main",
    "echoprobe-echoscu": "echoprobe.cli.echoscu:main",
    "echoprobe": "echoprobe.cli.echoprobe:run",
    "check_dicom": "echoprobe.cli.cmd_check:run_plugin",
}


def without_echoscu() -> bool:
    """Whether the build was asked to leave the `echoscu` name out."""
    return os.environ.get("ECHOPROBE_NO_ECHOSCU", "").strip().lower() not in ("", "0", "no")


class ConsoleScripts(MetadataHookInterface):
    """Fills [project.scripts] (declared dynamic in pyproject.toml)."""

    def update(self, metadata: dict[str, Any]) -> None:
        scripts = dict(SCRIPTS)
        if without_echoscu():
            del scripts["echoscu"]
        metadata["scripts"] = scripts
