"""The `echoscu` and `echoprobe-echoscu` commands (a hatchling build hook, pyproject.toml).

`echoprobe` and `check_dicom` are console-script entry points ([project.scripts]). The two
echoscu names are scripts (`scripts/`, installed from the wheel's data), because the launchers
installers write for entry points import `re`, which costs `echoscu` about 5 ms of the start-up
it must win against DCMTK's.

echoprobe's `echoscu` is a drop-in for DCMTK's, so an environment whose bin/ comes first on
the PATH shadows DCMTK's. Building with ECHOPROBE_NO_ECHOSCU=1 leaves the `echoscu` name out;
the same program stays reachable as `echoprobe-echoscu`, which every build installs:

    ECHOPROBE_NO_ECHOSCU=1 pip install --no-binary echoprobe echoprobe
    ECHOPROBE_NO_ECHOSCU=1 uv tool install --no-binary-package echoprobe echoprobe
"""

from __future__ import annotations

import os
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# file in this tree → installed name (echoprobe-echoscu is a link to the same launcher)
LAUNCHERS = {
    "scripts/echoscu": "echoscu",
    "scripts/echoprobe-echoscu": "echoprobe-echoscu",
}


def without_echoscu() -> bool:
    """Whether the build was asked to leave the `echoscu` name out."""
    return os.environ.get("ECHOPROBE_NO_ECHOSCU", "").strip().lower() not in ("", "0", "no")


class Launchers(BuildHookInterface):
    """Puts the echoscu launchers in the wheel's scripts (editable wheels too)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        launchers = dict(LAUNCHERS)
        if without_echoscu():
            del launchers["scripts/echoscu"]
        build_data["shared_scripts"].update(launchers)
