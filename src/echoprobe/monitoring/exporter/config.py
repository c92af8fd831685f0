"""The exporter's configuration file: YAML → frozen values, every error with `file:line`.

Rules:
- The schema is the exporter's contract (see docs/exporter.md): unknown keys are errors, so a
  misspelt option never silently does nothing. All problems of a file are reported, not only
  the first, each as `file:line: message`.
- Loading is complete validation: TLS settings are turned into a context here (files read,
  keys decrypted), so a bad certificate path fails `--config.check` and a reload, not a probe.
  An encrypted key without `key_password` fails instead of prompting on a terminal.
- Values are immutable; a reload builds a new `ExporterConfig` and swaps it whole.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeVar

from echoprobe.errors import TLSConfigError
from echoprobe.fleet.targets import TargetSyntaxError, check_ae_title
from echoprobe.monitoring.exporter.allowlist import AllowList
from echoprobe.monitoring.exporter.yaml_source import ConfigError, Node, load_document
from echoprobe.net.tls import KeyFormat, PeerVerification, TLSConfig, TLSProfile, build_context

T = TypeVar("T")

DEFAULT_MODULE: Final = "dicom_echo"
PROBERS: Final = ("dicom",)
MAX_TIMEOUT: Final = 3600.0


@dataclass(frozen=True, slots=True)
class DicomSettings:
    calling_ae: str = "ECHOPROBE"
    called_ae: str = "ANY-SCP"
    port: int = 104
    repeat: int = 1
    max_pdu: int = 16384
    tls: TLSConfig | None = None
    # Built from `tls` at load time; not part of the value's identity.
    tls_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    key_password_file: str | None = None

    @property
    def probe_tls(self) -> TLSConfig | ssl.SSLContext | None:
        """What `probe(tls=...)` gets: the context built at load time, so that a reload reads
        renewed files again; with `server_name` the `TLSConfig` itself, since only it sends SNI."""
        if self.tls is not None and self.tls.server_name is not None:
            return self.tls
        return self.tls_context


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    prober: str = "dicom"
    timeout: float = 5.0
    min_interval: float = 0.0
    dicom: DicomSettings = DicomSettings()


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrent_probes: int = 256
    per_host: int = 1


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    modules: Mapping[str, Module] = field(default_factory=lambda: MappingProxyType({}))
    allowed_targets: AllowList | None = None
    limits: Limits = Limits()
    source: str = "<config>"

    def module(self, name: str | None) -> Module | None:
        """The module of a request; no name means `dicom_echo` (when configured)."""
        return self.modules.get(DEFAULT_MODULE if name is None else name)


class _Problems:
    """Collects errors so that one load reports every problem of a file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(self, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except ConfigError as exc:
            self.lines.extend(exc.problems)
            return default


def _unknown(items: Mapping[str, tuple[Node, Node]], known: tuple[str, ...], what: str) -> None:
    for key, (key_node, _) in items.items():
        if key not in known:
            raise key_node.error(f"unknown key {key!r} in {what} (known: {', '.join(known)})")


def load_config(path: str | Path) -> ExporterConfig:
    """Read and validate the file at `path`; raises `ConfigError` listing every problem."""
    root = load_document(path)
    problems = _Problems()
    top = root.mapping("the configuration")
    known = ("allowed_targets", "limits", "modules")
    for key, (key_node, _) in top.items():
        if key not in known:
            problems.lines.append(
                f"{key_node.where}: unknown key {key!r} (known: {', '.join(known)})"
            )
    allow = None
    if "allowed_targets" in top and not top["allowed_targets"][1].is_null():
        allow = problems.check(lambda: _allow_list(top["allowed_targets"][1]), None)
    limits = Limits()
    if "limits" in top:
        limits = problems.check(lambda: _limits(top["limits"][1]), Limits())
    modules: dict[str, Module] = {}
    if "modules" not in top:
        problems.lines.append(f"{root.where}: no 'modules' configured")
    else:
        empty: dict[str, tuple[Node, Node]] = {}
        entries = problems.check(lambda: top["modules"][1].mapping("modules"), empty)
        for name, (_, value) in entries.items():
            module = problems.check(_module_reader(name, value), None)
            if module is not None:
                modules[name] = module
        if not entries and not problems.lines:
            problems.lines.append(f"{top['modules'][0].where}: 'modules' is empty")
    if problems.lines:
        raise ConfigError(problems.lines)
    return ExporterConfig(MappingProxyType(modules), allow, limits, str(path))


def _module_reader(name: str, node: Node) -> Callable[[], Module | None]:
    return lambda: _module(name, node)


def _allow_list(node: Node) -> AllowList:
    texts: list[str] = []
    for item in node.sequence("allowed_targets"):
        text = item.text("an allowed_targets entry")
        try:
            AllowList.parse([text])
        except ValueError as exc:
            raise item.error(str(exc)) from None
        texts.append(text)
    return AllowList.parse(texts)


def _limits(node: Node) -> Limits:
    items = node.mapping("limits")
    _unknown(items, ("max_concurrent_probes", "per_host"), "limits")
    base = Limits()
    return Limits(
        max_concurrent_probes=items["max_concurrent_probes"][1].integer(
            "max_concurrent_probes", 1, 100_000
        )
        if "max_concurrent_probes" in items
        else base.max_concurrent_probes,
        per_host=items["per_host"][1].integer("per_host", 1, 1024)
        if "per_host" in items
        else base.per_host,
    )


def _module(name: str, node: Node) -> Module:
    items = node.mapping(f"module {name!r}")
    _unknown(items, ("prober", "timeout", "min_interval", "dicom"), f"module {name!r}")
    prober = items["prober"][1].text("prober") if "prober" in items else "dicom"
    if prober not in PROBERS:
        raise items["prober"][1].error(f"unknown prober {prober!r} (known: {', '.join(PROBERS)})")
    timeout = 5.0
    if "timeout" in items:
        timeout = items["timeout"][1].duration("timeout")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise items["timeout"][1].error(f"timeout must be above 0 and at most {MAX_TIMEOUT:g}s")
    min_interval = 0.0
    if "min_interval" in items:
        min_interval = items["min_interval"][1].duration("min_interval")
        if min_interval > 86400:
            raise items["min_interval"][1].error("min_interval must be at most 24h")
    dicom = _dicom(items["dicom"][1]) if "dicom" in items else DicomSettings()
    return Module(name, prober, timeout, min_interval, dicom)


_DICOM_KEYS: Final = ("calling_ae", "called_ae", "port", "repeat", "max_pdu", "tls")


def _ae(node: Node, what: str) -> str:
    try:
        return check_ae_title(node.text(what), what)
    except TargetSyntaxError as exc:
        raise node.error(str(exc)) from None


def _dicom(node: Node) -> DicomSettings:
    items = node.mapping("dicom")
    _unknown(items, _DICOM_KEYS, "dicom")
    base = DicomSettings()
    settings = DicomSettings(
        calling_ae=_ae(items["calling_ae"][1], "calling_ae")
        if "calling_ae" in items
        else base.calling_ae,
        called_ae=_ae(items["called_ae"][1], "called_ae")
        if "called_ae" in items
        else base.called_ae,
        port=items["port"][1].integer("port", 1, 65535) if "port" in items else base.port,
        repeat=items["repeat"][1].integer("repeat", 1, 100) if "repeat" in items else base.repeat,
        max_pdu=items["max_pdu"][1].integer("max_pdu", 0, 0xFFFFFFFF)
        if "max_pdu" in items
        else base.max_pdu,
    )
    if "tls" not in items:
        return settings
    return _with_tls(settings, items["tls"][1])


_TLS_KEYS: Final = (
    "profile",
    "ca_file",
    "ca_dir",
    "key_file",
    "cert_file",
    "key_password",
    "key_password_file",
    "key_format",
    "ignore_peer_cert",
    "server_name",
)


def _enum_value(node: Node, what: str, choices: Mapping[str, T]) -> T:
    text = node.text(what)
    if text not in choices:
        raise node.error(f"unknown {what} {text!r} (one of {', '.join(choices)})")
    return choices[text]


def _relative(path: str, base: str) -> str:
    # Paths in the file are relative to the file, as Prometheus' own configurations are.
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else Path(base).parent / candidate)


def _blame(items: Mapping[str, tuple[Node, Node]], message: str, default: Node) -> Node:
    """The node of the file setting that a TLS error message names (else `default`)."""
    for key in ("ca_file", "ca_dir", "key_file", "cert_file"):
        if key in items:
            value = items[key][1]
            name = value.text(key)
            if name in message or _relative(name, value.file) in message:
                return value
    return default


def _with_tls(settings: DicomSettings, node: Node) -> DicomSettings:
    items = {} if node.is_null() else node.mapping("tls")
    _unknown(items, _TLS_KEYS, "tls")

    def text(key: str) -> str | None:
        return items[key][1].text(key) if key in items else None

    def path(key: str) -> str | None:
        value = text(key)
        return None if value is None else _relative(value, node.file)

    profiles = {p.name.lower().replace("_", "-"): p for p in TLSProfile}
    formats = {f.value: f for f in KeyFormat}
    profile = (
        _enum_value(items["profile"][1], "profile", profiles)
        if "profile" in items
        else TLSConfig().profile
    )
    key_format = (
        _enum_value(items["key_format"][1], "key_format", formats)
        if "key_format" in items
        else KeyFormat.PEM
    )
    password = text("key_password")
    password_file = path("key_password_file")
    if password is not None and password_file is not None:
        raise items["key_password_file"][0].error(
            "give key_password or key_password_file, not both"
        )
    if password_file is not None:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            raise items["key_password_file"][1].error(
                f"cannot read {password_file}: {exc}"
            ) from None
    key_file, cert_file = path("key_file"), path("cert_file")
    if (key_file is None) != (cert_file is None):
        raise node.error("tls needs both key_file and cert_file, or neither")
    ignore = (
        items["ignore_peer_cert"][1].boolean("ignore_peer_cert")
        if "ignore_peer_cert" in items
        else False
    )
    ca_file, ca_dir = path("ca_file"), path("ca_dir")
    config = TLSConfig(
        profile=profile,
        key_file=key_file,
        cert_file=cert_file,
        key_format=key_format,
        # "" rather than None: None lets OpenSSL prompt on a terminal for an encrypted key.
        password=password if password is not None else ("" if key_file else None),
        ca_files=() if ca_file is None else (ca_file,),
        ca_dirs=() if ca_dir is None else (ca_dir,),
        verify_peer=PeerVerification.IGNORE if ignore else PeerVerification.REQUIRE,
        server_name=text("server_name"),
    )
    if not ignore and ca_file is None and ca_dir is None:
        raise node.error(
            "tls needs ca_file or ca_dir to verify the peer (or ignore_peer_cert: true)"
        )
    warnings: list[str] = []
    try:
        context = build_context(config, report=lambda _level, line: warnings.append(line))
    except TLSConfigError as exc:
        raise _blame(items, str(exc), node).error(f"tls: {exc}") from None
    # DCMTK goes on without a CA file it cannot load; an exporter would then fail every probe
    # with "certificate verify failed", so a file that does not load is a configuration error.
    unloadable = [
        line.removesuffix(", ignoring") for line in warnings if line.startswith("unable to load")
    ]
    if unloadable:
        raise _blame(items, unloadable[0], node).error(f"tls: {'; '.join(unloadable)}")
    return DicomSettings(
        calling_ae=settings.calling_ae,
        called_ae=settings.called_ae,
        port=settings.port,
        repeat=settings.repeat,
        max_pdu=settings.max_pdu,
        tls=config,
        tls_context=context,
        key_password_file=password_file,
    )
