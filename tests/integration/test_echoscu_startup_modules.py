"""echoscu's usual conversation, run to its end, imports none of the modules its start-up rules
keep out (tests/unit/test_echoscu_startup.py lists them and says why)."""

from __future__ import annotations

from tests.support.servers import ThreadedEchoSCP
from tests.unit.test_echoscu_startup import heavy_modules_after


def test_a_successful_echo_imports_no_heavy_module(echo_scp: ThreadedEchoSCP) -> None:
    assert heavy_modules_after(["127.0.0.1", str(echo_scp.port)]) == ("exit 0", "[]")


def test_repeated_echoes_import_no_heavy_module(echo_scp: ThreadedEchoSCP) -> None:
    assert heavy_modules_after(["--repeat", "3", "127.0.0.1", str(echo_scp.port)]) == (
        "exit 0",
        "[]",
    )
