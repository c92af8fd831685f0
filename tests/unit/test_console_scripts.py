"""The environment's console scripts are echoprobe's, not pynetdicom's of the same names.

pynetdicom (a dev dependency) installs `echoscu` too, and uv installs packages in parallel;
`uv sync --reinstall-package echoprobe` after a sync settles it (pyproject's [tool.uv]). A
script that is not ours fails here with that advice; outside a virtual environment with our
scripts (an installed wheel elsewhere) there is nothing to check.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.conftest import IN_CI

SCRIPTS = {
    "echoscu": "echoprobe.cli.echoscu",
    "echoprobe-echoscu": "echoprobe.cli.echoscu",
    "echoprobe": "echoprobe.cli.echoprobe",
    "check_dicom": "echoprobe.cli.cmd_check",
}
# Names another package of the environment may also install (pynetdicom: echoscu). Under CI,
# which reinstalls the project last, they must be ours; in a fresh development checkout the
# test says how to make them ours instead of failing the README's test command.
SHARED = frozenset({"echoscu"})


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_console_script_is_ours(name: str) -> None:
    script = Path(sys.prefix) / "bin" / name
    if not script.exists():
        if IN_CI:
            pytest.fail(f"{script} is missing (CI=true: the project must be installed)")
        pytest.skip(f"{script} is not installed here")
    text = script.read_text(errors="replace")
    if name in SHARED and not IN_CI and f"from {SCRIPTS[name]} import" not in text:
        pytest.skip(
            f"{script} is another package's (pynetdicom's): `uv sync --reinstall-package "
            "echoprobe` makes it ours; `echoprobe-echoscu` is ours in any case"
        )
    assert f"from {SCRIPTS[name]} import" in text, (
        f"{script} is not echoprobe's (another package installed a script of the same name "
        "last): run `uv sync --reinstall-package echoprobe`"
    )
