"""The library as an asyncio developer meets it: exception families, docstrings, defaults, and
examples that use only the public API."""

from __future__ import annotations

import ast
import errno
import inspect
from pathlib import Path

import pytest

import echoprobe
from echoprobe import errors

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))

TIMEOUT_CLASSES = [
    errors.ConnectTimeout,
    errors.TLSHandshakeTimeout,
    errors.AssociationTimeout,
    errors.DIMSETimeout,
    errors.ReleaseTimeout,
    errors.DeadlineExceeded,
]


@pytest.mark.parametrize("cls", TIMEOUT_CLASSES)
def test_every_timeout_is_a_builtin_timeout_error(cls: type[errors.TimeoutError_]) -> None:
    error = cls("the peer was silent", phase="associate", timer="total", mid_pdu=True)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, errors.ProbeError)
    assert (error.phase, error.timer, error.mid_pdu) == ("associate", "total", True)
    assert str(error) == "the peer was silent"
    with pytest.raises(TimeoutError):
        raise error


def test_timeout_outcomes_are_unchanged() -> None:
    outcomes = {cls.__name__: cls.outcome for cls in TIMEOUT_CLASSES}
    assert outcomes == {
        "ConnectTimeout": "connect_timeout",
        "TLSHandshakeTimeout": "tls_handshake_timeout",
        "AssociationTimeout": "acse_timeout",
        "DIMSETimeout": "dimse_timeout",
        "ReleaseTimeout": "release_timeout",
        "DeadlineExceeded": "deadline_exceeded",
    }
    assert issubclass(errors.ConnectTimeout, errors.NetworkError)
    assert issubclass(errors.TLSHandshakeTimeout, errors.TLSError)


def test_connection_refused_is_a_builtin_connection_refused_error() -> None:
    error = errors.ConnectionRefused("connection refused by 127.0.0.1:1", phase="connect")
    assert isinstance(error, ConnectionRefusedError)
    assert isinstance(error, OSError)
    assert isinstance(error, errors.NetworkError)
    assert error.errno == errno.ECONNREFUSED
    assert (error.outcome, error.phase, error.os_errno) == ("connection_refused", "connect", None)
    assert str(error) == "connection refused by 127.0.0.1:1"


def test_other_probe_errors_are_not_os_errors() -> None:
    """Only transport refusals and timeouts join the builtin families."""
    assert not issubclass(errors.AssociationRejected, OSError)
    assert not issubclass(errors.EchoStatusError, OSError)
    assert not issubclass(errors.ConnectionLost, TimeoutError)


@pytest.mark.parametrize("name", ["echo", "probe", "sweep", "Timeouts"])
def test_public_entry_points_document_parameters_defaults_and_errors(name: str) -> None:
    doc = inspect.getdoc(getattr(echoprobe, name)) or ""
    assert len(doc.splitlines()) > 20, f"{name} is documented in {len(doc.splitlines())} lines"
    if name == "Timeouts":
        fields = ("connect", "tls", "acse", "dimse", "release", "socket", "total")
        assert all(f"{field}:" in doc for field in fields)
        assert "default 60 s" in doc
        return
    assert "Args:" in doc
    assert "Raises:" in doc
    signature = inspect.signature(getattr(echoprobe, name))
    for parameter in signature.parameters:
        assert parameter in doc, f"{name}() does not document {parameter}"


def test_echo_documents_every_exception_it_raises() -> None:
    doc = inspect.getdoc(echoprobe.echo) or ""
    for cls in ("DNSError", "ConnectionRefused", "AssociationTimeout", "DIMSETimeout",
                "DeadlineExceeded", "AssociationRejected", "AssociationAborted",
                "NoAcceptedContext", "EchoStatusError", "ConnectionLost"):  # fmt: skip
        assert cls in doc


def test_default_timeouts_bound_the_whole_association() -> None:
    timeouts = echoprobe.Timeouts()
    assert timeouts.total == 60.0
    # no phase's own default is cut by the total: a single stalled phase keeps its outcome
    phases = (timeouts.connect, timeouts.tls, timeouts.acse, timeouts.dimse, timeouts.release)
    assert all(p is not None and 2 * p <= timeouts.total for p in phases)
    assert echoprobe.Timeouts(total=None).total is None


def _echoprobe_names(tree: ast.AST) -> set[str]:
    """Names a module takes from echoprobe: `from echoprobe import X` and `echoprobe.X`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("echoprobe"):
            assert node.module == "echoprobe", f"imports the internal module {node.module}"
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] != "echoprobe" or alias.name == "echoprobe", (
                    f"imports the internal module {alias.name}"
                )
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "echoprobe"
        ):
            names.add(node.attr)
    return names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_use_only_the_public_api(path: Path) -> None:
    names = _echoprobe_names(ast.parse(path.read_text(encoding="utf-8")))
    assert names, f"{path.name} does not use echoprobe"
    assert names <= set(echoprobe.__all__), sorted(names - set(echoprobe.__all__))


def test_the_check_catches_an_internal_import() -> None:
    with pytest.raises(AssertionError, match="internal module"):
        _echoprobe_names(ast.parse("from echoprobe.net.client import probe\n"))


def test_every_public_name_resolves() -> None:
    for name in echoprobe.__all__:
        assert getattr(echoprobe, name) is not None
