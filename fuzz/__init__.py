"""Coverage-guided fuzzing harnesses (atheris) for echoprobe's wire-facing code.

Each `fuzz_<target>.py` defines `check(data: bytes) -> None`, which raises `Finding` (or any
unexpected exception) when an invariant breaks. `python -m fuzz.run` fuzzes them under atheris;
`tests/fuzz/test_fuzz_smoke.py` replays the checked-in corpora without instrumentation.

This package must not import echoprobe at import time: `fuzz.harness` instruments echoprobe's
modules as they are first imported.
"""

import logging

TARGETS = ("codec", "framer", "negotiation", "dimse", "connection", "fastpath", "scp")


def quiet() -> None:
    """Millions of inputs would each log a warning (a dropped client, a protocol error):
    findings are raised, not logged, so echoprobe's logging is silenced while fuzzing."""
    logging.getLogger("echoprobe").setLevel(logging.CRITICAL + 1)
