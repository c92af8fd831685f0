"""The exporter's configuration file: the schema, defaults, and every error with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.tls_certs import shared_kit

from echoprobe.monitoring.exporter.config import DicomSettings, Limits, load_config
from echoprobe.monitoring.exporter.pages import REDACTED, config_yaml
from echoprobe.monitoring.exporter.yaml_source import ConfigError, format_duration, parse_duration
from echoprobe.net.tls import PeerVerification, TLSProfile

FULL = """\
allowed_targets: ["127.0.0.0/8", "::1", "pacs.example.org", "archive.example.org:11112"]
limits:
  max_concurrent_probes: 32
  per_host: 2
modules:
  dicom_echo:
    prober: dicom
    timeout: 1m30s
    min_interval: 500ms
    dicom:
      calling_ae: PROBE
      called_ae: PACS
      port: 11112
      repeat: 3
      max_pdu: 32768
"""


def write(tmp_path: Path, text: str, name: str = "exporter.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def problems_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def test_full_configuration(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.limits == Limits(32, 2)
    module = config.module(None)
    assert module is not None
    assert module.name == "dicom_echo"
    assert module.timeout == 90.0
    assert module.min_interval == 0.5
    assert module.dicom == DicomSettings("PROBE", "PACS", 11112, 3, 32768)
    assert config.allowed_targets is not None
    assert config.allowed_targets.allows("127.5.5.5", 104)
    assert config.allowed_targets.allows("archive.example.org", 11112)
    assert not config.allowed_targets.allows("archive.example.org", 104)


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "modules:\n  m:\n"))
    module = config.modules["m"]
    assert (module.prober, module.timeout, module.min_interval) == ("dicom", 5.0, 0.0)
    assert module.dicom == DicomSettings()
    assert module.dicom.calling_ae == "ECHOPROBE"
    assert config.allowed_targets is None
    assert config.limits == Limits(256, 1)
    assert config.module(None) is None  # no dicom_echo: a request must name its module


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("modules:\n  m:\n    timeot: 5s\n", 3, "unknown key 'timeot'"),
        ("modules:\n  m:\n    timeout: 5\n", 3, "duration with a unit"),
        ("modules:\n  m:\n    timeout: 5 s\n", 3, "invalid duration"),
        ("modules:\n  m:\n    timeout: 0s\n", 3, "above 0"),
        ("modules:\n  m:\n    prober: http\n", 3, "unknown prober"),
        ("modules:\n  m:\n    dicom:\n      port: 70000\n", 4, "between 1 and 65535"),
        ("modules:\n  m:\n    dicom:\n      port: '104'\n", 4, "integer"),
        ("modules:\n  m:\n    dicom:\n      called_ae: WAY-TOO-LONG-AE-TITLE\n", 4, "16"),
        ("modules:\n  m:\n    dicom:\n      tls: {ca_file: x.pem, key_file: k}\n", 4, "both"),
        ("modules:\n  m:\n    dicom:\n      tls:\n        profile: nope\n", 5, "profile"),
        ("limits:\n  per_host: 0\nmodules:\n  m:\n", 2, "between 1"),
        ("limits:\n  burst: 3\nmodules:\n  m:\n", 2, "unknown key 'burst'"),
        ("allowed_targets: [10.0.0.0/33]\nmodules:\n  m:\n", 1, "invalid network"),
        ("allowed_targets: ['bad host!']\nmodules:\n  m:\n", 1, "invalid"),
        ("modules:\n  m:\n  m:\n", 3, "duplicate key 'm'"),
        ("modules: [a, b]\n", 1, "must be a mapping"),
        ("module:\n  m:\n", 1, "unknown key 'module'"),
        ("modules:\n  m:\n    timeout: [5s\n", 4, "invalid YAML"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    problems = problems_of(tmp_path, text)
    path = str(tmp_path / "exporter.yml")
    assert any(p.startswith(f"{path}:{line}: ") and words in p for p in problems), problems


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = "bogus: 1\nmodules:\n  a:\n    timeout: x\n  b:\n    min_interval: y\n"
    problems = problems_of(tmp_path, text)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in problems] == ["1", "4", "6"]


def test_missing_file_and_empty_modules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yml")
    assert any("no 'modules'" in p for p in problems_of(tmp_path, ""))
    assert any("empty" in p for p in problems_of(tmp_path, "modules: {}\n"))


def test_alias_bomb_is_not_expanded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    lines.append("allowed_targets: *a29\nmodules:\n  m:\n")
    problems = problems_of(tmp_path, "\n".join(lines) + "\n")
    assert any("must be a string" in p or "unknown key" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("500ms", 0.5), ("5s", 5.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 2.5e-4)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "-5s", "5s5", "1e3s", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.5, 5, 90, 3600)] == [
        "0s",
        "500ms",
        "5s",
        "1m30s",
        "1h",
    ]


def test_tls_module_builds_its_context(tmp_path: Path) -> None:
    kit = shared_kit()
    secret = tmp_path / "password.txt"
    secret.write_text("s3cret\n")
    text = f"""\
modules:
  dicom_tls:
    dicom:
      tls:
        profile: bcp195-rfc8996-modified
        ca_file: {kit.ca}
        key_file: {kit.client_key_encrypted}
        cert_file: {kit.client_cert}
        key_password_file: password.txt
        server_name: pacs.example.org
"""
    module = load_config(write(tmp_path, text)).modules["dicom_tls"]
    tls = module.dicom.tls
    assert tls is not None
    assert tls.profile is TLSProfile.BCP195_RFC8996_MODIFIED
    assert tls.password == "s3cret"
    assert tls.verify_peer is PeerVerification.REQUIRE
    assert module.dicom.tls_context is not None
    assert module.dicom.probe_tls is tls  # SNI needs the TLSConfig


def test_tls_errors(tmp_path: Path) -> None:
    kit = shared_kit()
    base = "modules:\n  m:\n    dicom:\n      tls:\n"
    missing_ca = problems_of(tmp_path, base + "        ca_file: absent.pem\n")
    assert "unable to load certificate file" in missing_ca[0]
    assert missing_ca[0].startswith(str(tmp_path / "exporter.yml") + ":5: ")  # the ca_file
    no_anchor = problems_of(tmp_path, base + "        key_format: pem\n")
    assert "ca_file or ca_dir" in no_anchor[0]
    wrong_password = problems_of(
        tmp_path,
        base
        + f"        ca_file: {kit.ca}\n        key_file: {kit.client_key_encrypted}\n"
        + f"        cert_file: {kit.client_cert}\n        key_password: wrong\n",
    )
    assert wrong_password[0].startswith(str(tmp_path / "exporter.yml") + ":6: tls: ")  # key_file
    ignored = load_config(write(tmp_path, base + "        ignore_peer_cert: true\n"))
    tls = ignored.modules["m"].dicom.tls
    assert tls is not None
    assert tls.verify_peer is PeerVerification.IGNORE


def test_config_page_redacts_secrets(tmp_path: Path) -> None:
    kit = shared_kit()
    text = f"""\
modules:
  m:
    dicom:
      tls:
        ca_file: {kit.ca}
        key_file: {kit.client_key_encrypted}
        cert_file: {kit.client_cert}
        key_password: s3cret
"""
    shown = config_yaml(load_config(write(tmp_path, text)))
    assert "s3cret" not in shown
    assert REDACTED in shown
    assert "timeout: 5s" in shown
