"""The ``echoscu`` command line: DCMTK 3.6.8's options, checks and messages.

Rules (docs/echoscu-behavior.md §2, §3, §11, §12; DCMTK 3.6.8 dcmnet/apps/echoscu.cc,
dcmtls/libsrc/tlsopt.cc, oflog/libsrc/oflog.cc):

* Evaluation order decides which error is reported: command files and tokens, ``-h``,
  ``--version``, ``+cc``, the port, the logging options, ``--arguments``, then ``-aet``,
  ``-aec``, ``-to``, ``-ts``, ``-ta``, ``-td``, ``-pdu``, ``--repeat``, ``--abort``,
  ``-pts``, ``-ppc`` and the TLS options.
* Errors before logging is configured are always printed; later ones are silenced when
  the root logger drops ERROR messages (``-q``, ``-ll fatal``/``off``, an ``-lc`` file),
  but still exit 1.
* Where 3.6.7 and 3.6.8 differ (``-pts`` 1..45, ``+pg``/``+pm``, SNI options, the TLS
  evaluation order), 3.6.8 is followed; ``+crv`` with ``+cra`` is refused, as DCMTK does.
* Parsing is pure; the results say what to print. ``ssl`` is imported only for
  ``--version`` and ``+cc``.
"""

from __future__ import annotations

import os
import sys

from echoprobe import __version__
from echoprobe._values import field, replace, value
from echoprobe.cli.dcmtk_args import (
    CommandLineError,
    Group,
    Option,
    OptionTable,
    Param,
    ParsedArgs,
    ParseStatus,
    arguments_message,
    error_block,
    expand_command_files,
    param_unsigned,
    value_signed,
    value_unsigned,
)
from echoprobe.report.dcmtk_log import (
    ROOT,
    DcmtkLogger,
    Level,
    LogRecord,
    LogSetup,
    parse_level,
    render_default,
    write_text,
)

# typing.TYPE_CHECKING without importing typing (start-up time); mypy honours the name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final, TextIO

__all__ = [
    "APP_LOGGER",
    "HEADER",
    "MAX_PROPOSED_TS",
    "RCSID",
    "TABLE",
    "CrlMode",
    "EchoscuConfig",
    "Exit",
    "KeyFormat",
    "Parsed",
    "PeerCertificate",
    "TlsProfile",
    "TlsSettings",
    "cipher_list_text",
    "iana_cipher_name",
    "parse_echoscu",
    "usage_text",
    "version_text",
]

# Tests put DCMTK's rcsid in place of this line before comparing outputs.
RCSID = f"$echoprobe: echoscu v{__version__} 2026-11-28 $"
APP_NAME = "echoscu"
DESCRIPTION = "DICOM verification (C-ECHO) SCU"
HEADER = f"{RCSID}\n\n{APP_NAME}: {DESCRIPTION}\n"
APP_LOGGER = "dcmtk.apps.echoscu"

# DCMTK 3.6.8 proposes up to 45 transfer syntaxes (38 in 3.6.7), see behaviour doc §4.3/§12.
MAX_PROPOSED_TS = 45
MAX_PROPOSED_PC = 128
MIN_PDU = 4096
MAX_PDU = 131072
DEFAULT_PDU = 16384

# Column widths of echoscu.cc: LONGCOL 19, SHORTCOL 4; parameters at LONGCOL+SHORTCOL+4.
_LONG_COL = 19
_SHORT_COL = 4
_TLS_DEPENDENCY = "--enable-tls or --anonymous-tls"

_S = "[s]econds: integer"
_F = "[f]ilename: string"

TABLE = OptionTable(
    (
        Group("general options:", long_width=_LONG_COL, short_width=_SHORT_COL + 2),
        Option("--help", "-h", help="show this help text and exit", exclusive=True),
        Option("--version", help="show version information and exit", exclusive=True),
        Option("--arguments", help="log the expanded command line arguments"),
        Option("--quiet", "-q", help="quiet mode: report fatal errors only"),
        Option("--verbose", "-v", help="verbose mode: report processing steps"),
        Option("--debug", "-d", help="debug mode: report debugging details"),
        Option(
            "--log-level",
            "-ll",
            1,
            "[l]evel: string constant",
            "(fatal, error, warn, info, debug, trace)\nlog at level l",
        ),
        Option("--log-config", "-lc", 1, _F, "configure the logger from file f"),
        Group("network options:"),
        Group("application entity titles:", subgroup=True),
        Option("--aetitle", "-aet", 1, "[a]etitle: string", "my AE title (default: ECHOSCU)"),
        Option("--call", "-aec", 1, "[a]etitle: string", "AE title of the peer (default: ANY-SCP)"),
        Group("association negotiation debugging:", subgroup=True),
        Option(
            "--propose-ts",
            "-pts",
            1,
            f"[n]umber: integer (1..{MAX_PROPOSED_TS})",
            "propose the first n transfer syntaxes",
        ),
        Option(
            "--propose-pc",
            "-ppc",
            1,
            f"[n]umber: integer (1..{MAX_PROPOSED_PC})",
            "propose n presentation contexts",
        ),
        Group("other network options:", subgroup=True),
        Option(
            "--timeout",
            "-to",
            1,
            f"{_S} (default: unlimited)",
            "timeout for connecting to the peer",
        ),
        Option(
            "--socket-timeout",
            "-ts",
            1,
            f"{_S} (default: 60)",
            "timeout for socket reads and writes\n(0 for infinite, -1 for the system default)",
        ),
        Option("--acse-timeout", "-ta", 1, f"{_S} (default: 30)", "timeout for ACSE messages"),
        Option(
            "--dimse-timeout", "-td", 1, f"{_S} (default: unlimited)", "timeout for DIMSE messages"
        ),
        Option(
            "--max-pdu",
            "-pdu",
            1,
            f"[n]umber of bytes: integer ({MIN_PDU}..{MAX_PDU})",
            f"largest PDU to receive (default: {DEFAULT_PDU})",
        ),
        Option("--repeat", "", 1, "[n]umber: integer", "send n echo requests"),
        Option("--abort", help="abort the association instead of releasing it"),
        Group("transport layer security (TLS) options:"),
        Group("transport protocol stack:", subgroup=True),
        Option("--disable-tls", "-tls", help="plain TCP/IP connection (default)"),
        Option(
            "--enable-tls",
            "+tls",
            2,
            "[p]rivate key file, [c]ertificate file: string",
            "TLS, authenticated with key p and certificate c",
        ),
        Option("--anonymous-tls", "+tla", help="TLS without a client certificate"),
        Group("private key password (only with --enable-tls):", subgroup=True),
        Option("--std-passwd", "+ps", help="ask for the password on the terminal (default)"),
        Option("--use-passwd", "+pw", 1, "[p]assword: string", "use password p"),
        Option("--null-passwd", "-pw", help="use an empty password"),
        Group("key and certificate file format:", subgroup=True),
        Option("--pem-keys", "-pem", help="keys and certificates are PEM files (default)"),
        Option("--der-keys", "-der", help="keys and certificates are DER files"),
        Group("certification authority:", subgroup=True),
        Option("--add-cert-file", "+cf", 1, _F, "trust the certificates in file f"),
        Option("--add-cert-dir", "+cd", 1, "[d]irectory: string", "trust the certificates in d"),
        Option(
            "--add-crl-file",
            "+crl",
            1,
            _F,
            "use the certificate revocation list in f\n(implies --enable-crl-vfy)",
        ),
        Option("--enable-crl-vfy", "+crv", help="check the CRL of the peer certificate"),
        Option("--enable-crl-all", "+cra", help="check the CRLs of the whole chain"),
        Group("security profile:", subgroup=True),
        Option("--profile-8996", "+pg", help="BCP 195 RFC 8996 TLS profile (default)"),
        Option("--profile-8996-mod", "+pm", help="modified BCP 195 RFC 8996 TLS profile"),
        Option("--profile-bcp195-nd", "+py", help="non-downgrading BCP 195 profile (retired)"),
        Option("--profile-bcp195", "+px", help="BCP 195 TLS profile (retired)"),
        Option("--profile-bcp195-ex", "+pz", help="extended BCP 195 TLS profile (retired)"),
        Option(
            "--profile-basic",
            "+pb",
            help="basic TLS secure transport profile\n(retired; needs 3DES in the TLS library)",
        ),
        Option("--profile-aes", "+pa", help="AES TLS secure transport profile\n(retired)"),
        Option(
            "--profile-null",
            "+pn",
            help="authenticated, unencrypted communication\n(retired, was used by IHE ATNA)",
        ),
        Group("ciphersuite:", subgroup=True),
        Option(
            "--list-ciphers",
            "+cc",
            help="list the supported TLS cipher suites and exit",
            exclusive=True,
        ),
        Option(
            "--cipher",
            "+cs",
            1,
            "[c]iphersuite name: string",
            "add cipher suite c to the negotiated list\n(not with --profile-bcp195-ex)",
        ),
        Group("server name indication:", subgroup=True),
        Option("--no-sni", help="send no server name (default)"),
        Option("--request-sni", "", 1, "[s]erver name: string", "ask the peer for server name s"),
        Group("pseudo random generator:", subgroup=True),
        Option("--seed", "+rs", 1, _F, "seed the random generator from file f"),
        Option("--write-seed", "+ws", help="write the updated seed back (only with --seed)"),
        Option(
            "--write-seed-file",
            "+wf",
            1,
            f"{_F} (only with --seed)",
            "write the updated seed to file f",
        ),
        Group("peer authentication:", subgroup=True),
        Option("--require-peer-cert", "-rc", help="verify the peer certificate (default)"),
        Option("--ignore-peer-cert", "-ic", help="do not verify the peer certificate"),
        Group("offline certificate verification:", subgroup=True),
        Option(
            "--verify-cert",
            "+vc",
            1,
            _F,
            "check certificate f against the CA settings",
            exclusive=True,
        ),
        Option(
            "--is-root-cert",
            "+rc",
            1,
            _F,
            "check that f is a self-signed root CA certificate",
            exclusive=True,
        ),
    ),
    (
        Param("peer", "host name or IP address of the DICOM peer"),
        Param("port", "TCP port of the peer"),
    ),
    long_width=_LONG_COL,
    short_width=_SHORT_COL,
    param_width=_LONG_COL + _SHORT_COL + 4,
)

# Rightmost-wins groups, members in the order DCMTK evaluates them (which decides the
# error reported when several members are present and all are invalid).
_LOG_BLOCK = ("--debug", "--verbose", "--quiet")
_TLS_BLOCK = ("--disable-tls", "--enable-tls", "--anonymous-tls")
_PASSWORD_BLOCK = ("--std-passwd", "--use-passwd", "--null-passwd")
_KEY_FORMAT_BLOCK = ("--pem-keys", "--der-keys")
_CRL_BLOCK = ("--enable-crl-vfy", "--enable-crl-all")
_SEED_BLOCK = ("--write-seed", "--write-seed-file")
_PEER_BLOCK = ("--require-peer-cert", "--ignore-peer-cert")
_PROFILE_BLOCK = (
    "--profile-8996",
    "--profile-8996-mod",
    "--profile-bcp195",
    "--profile-bcp195-nd",
    "--profile-bcp195-ex",
    "--profile-basic",
    "--profile-aes",
    "--profile-null",
)


# The TLS choices hold the values of `net.tls_settings`' enums, which `echoscu_tls` converts
# to; plain strings here because `enum` (and `ssl`) are imported only once TLS is asked for.


class KeyFormat:
    PEM: Final = "pem"
    DER: Final = "der"


class CrlMode:
    NONE: Final = "none"
    LEAF: Final = "leaf"  # +crv; also what a successfully loaded +crl file turns NONE into
    ALL: Final = "all"  # +cra


class PeerCertificate:
    REQUIRE: Final = "require"  # -rc (default)
    IGNORE: Final = "ignore"  # -ic


class TlsProfile:
    BCP195_RFC8996: Final = "+pg"  # 3.6.8 default
    BCP195_RFC8996_MODIFIED: Final = "+pm"
    BCP195_ND: Final = "+py"
    BCP195: Final = "+px"
    BCP195_EXTENDED: Final = "+pz"
    BASIC: Final = "+pb"
    AES: Final = "+pa"
    NULL: Final = "+pn"


_PROFILES = {
    "--profile-8996": TlsProfile.BCP195_RFC8996,
    "--profile-8996-mod": TlsProfile.BCP195_RFC8996_MODIFIED,
    "--profile-bcp195": TlsProfile.BCP195,
    "--profile-bcp195-nd": TlsProfile.BCP195_ND,
    "--profile-bcp195-ex": TlsProfile.BCP195_EXTENDED,
    "--profile-basic": TlsProfile.BASIC,
    "--profile-aes": TlsProfile.AES,
    "--profile-null": TlsProfile.NULL,
}


@value
class TlsSettings:
    """The TLS options as given; files are not opened here (DCMTK does it later too)."""

    enabled: bool = False  # +tls or +tla
    authenticate: bool = False  # +tls: present key_file/cert_file
    key_file: str | None = None
    cert_file: str | None = None
    password: str | None = None  # None: ask on the terminal (+ps); "" for -pw
    key_format: str = KeyFormat.PEM
    ca_files: tuple[str, ...] = ()  # +cf, command-line order
    ca_dirs: tuple[str, ...] = ()  # +cd
    crl_files: tuple[str, ...] = ()  # +crl
    crl_mode: str = CrlMode.NONE
    profile: str = TlsProfile.BCP195_RFC8996
    ciphers: tuple[str, ...] = ()  # +cs, command-line order, as typed
    server_name: str | None = None  # --request-sni
    seed_file: str | None = None  # +rs
    write_seed_file: str | None = None  # +ws (= seed_file) or +wf
    peer_certificate: str = PeerCertificate.REQUIRE


@value
class EchoscuConfig:
    """A valid ``echoscu`` command line. Timeouts are seconds, None for unlimited."""

    peer: str
    port: int
    program: str = APP_NAME  # argv[0] as invoked
    calling_ae: str = "ECHOSCU"
    called_ae: str = "ANY-SCP"
    num_ts: int = 1
    num_pc: int = 1
    connect_timeout: int | None = None  # -to; 0 only after 32-bit wrap-around
    socket_timeout: int = 60  # -ts: -1 leaves the socket untouched, 0 sets "infinite"
    acse_timeout: int | None = 30  # -ta
    dimse_timeout: int | None = None  # -td; None: blocking reads bounded by -ts
    max_pdu: int = DEFAULT_PDU  # even: an odd -pdu is reduced (see assoc_warnings)
    repeat: int = 1
    abort: bool = False
    log: LogSetup = field(default_factory=LogSetup)
    tls: TlsSettings = field(default_factory=TlsSettings)
    verify_cert: str | None = None  # +vc FILE: offline check instead of an echo
    is_root_cert: str | None = None  # +rc FILE
    startup: tuple[LogRecord, ...] = ()  # logged by make_logger() (--arguments)
    # WARN lines (logger dcmtk.dcmnet) due when the association parameters are built,
    # i.e. after the data-dictionary start-up lines: "ASSOC: PDV receive length ... is odd".
    assoc_warnings: tuple[str, ...] = ()

    @property
    def log_level(self) -> int:
        """Root level chosen with -q/-v/-d/-ll (WARN by default; see ``log`` for -lc)."""
        return self.log.level

    @property
    def log_config(self) -> str | None:
        return None if self.log.config is None else self.log.config.path

    @property
    def quiet(self) -> bool:
        return self.log.quiet

    def make_logger(
        self, *, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> DcmtkLogger:
        """Configure logging as asked and log the start-up records (``--arguments``)."""
        logger = DcmtkLogger.from_setup(
            self.log, stdout=stdout, stderr=stderr, app_logger=APP_LOGGER
        )
        for record in self.startup:
            logger.emit(record)
        return logger


@value
class Exit:
    """Stop now with ``code`` after printing ``stdout``/``stderr``.

    Without ``-lc``, ``stderr`` already holds any ``--arguments`` lines. With ``-lc`` the
    configured logger must be built first (``log``) and ``records`` go through it: use
    ``emit()``, which does all of this in DCMTK's order.
    """

    code: int
    stdout: str = ""
    stderr: str = ""
    log: LogSetup | None = None
    records: tuple[LogRecord, ...] = ()

    def emit(self, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
        """Print everything in DCMTK's order and return the exit code."""
        if self.log is not None:
            # Built even without records: DCMTK has applied the -lc file by now (files
            # opened or truncated, log4cplus's own complaints printed).
            logger = DcmtkLogger.from_setup(
                self.log, stdout=stdout, stderr=stderr, app_logger=APP_LOGGER
            )
            for record in self.records:
                logger.emit(record)
            logger.close()
        if self.stdout:
            write_text(stdout or sys.stdout, self.stdout)
        if self.stderr:
            write_text(stderr or sys.stderr, self.stderr)
        return self.code


Parsed = Exit | EchoscuConfig


def usage_text() -> str:
    """The ``-h`` text (stdout)."""
    return TABLE.usage(HEADER, APP_NAME)


def _host_header() -> str:
    # Same seven lines as DCMTK's printHeader(hostInfo=true), with our own facts.
    import locale  # noqa: PLC0415 - only for --version and +cc

    try:
        machine = os.uname().machine
    except AttributeError:  # pragma: no cover - Windows
        machine = "unknown"
    encoding = locale.getencoding() or "system default (unknown)"
    build = f"{sys.implementation.name}-{sys.version_info.major}{sys.version_info.minor}"
    return (
        f"{HEADER}\nHost type: {machine}-{sys.platform}\n"
        f"Character encoding: {encoding}\nBuild options: {build}\n"
    )


def version_text() -> str:
    """The ``--version`` text (stdout): the libraries actually in use."""
    lines = [f"- Python {sys.version.split()[0]}"]
    try:
        import ssl  # noqa: PLC0415 - costly; only for --version
    except ImportError:  # pragma: no cover - Python built without ssl
        pass
    else:
        lines.append(f"- {ssl.OPENSSL_VERSION}")
    return f"{_host_header()}\nExternal libraries used:\n" + "".join(f"{x}\n" for x in lines)


def cipher_list_text() -> str:
    """The ``+cc`` text (stdout): the suites ``+cs`` accepts that this OpenSSL offers, in
    DCMTK's table order (weakest first), by IANA name. TLS 1.3 suites cannot be chosen by
    ``+cs``, so, as in DCMTK, they are not listed."""
    from echoprobe.net.tls import supported_cipher_suites  # noqa: PLC0415 - ssl only for +cc

    body = "".join(f"  {name}\n" for name in supported_cipher_suites())
    return f"{_host_header()}\nSupported TLS ciphersuites are:\n{body}"


_KEY_EXCHANGES = (
    ("ECDHE-ECDSA-", "ECDHE_ECDSA"),
    ("ECDHE-RSA-", "ECDHE_RSA"),
    ("ECDHE-PSK-", "ECDHE_PSK"),
    ("ECDH-ECDSA-", "ECDH_ECDSA"),
    ("ECDH-RSA-", "ECDH_RSA"),
    ("DHE-RSA-", "DHE_RSA"),
    ("DHE-DSS-", "DHE_DSS"),
    ("DHE-PSK-", "DHE_PSK"),
    ("EDH-RSA-", "DHE_RSA"),
    ("EDH-DSS-", "DHE_DSS"),
    ("DH-RSA-", "DH_RSA"),
    ("DH-DSS-", "DH_DSS"),
    ("RSA-PSK-", "RSA_PSK"),
    ("SRP-RSA-", "SRP_SHA_RSA"),
    ("SRP-DSS-", "SRP_SHA_DSS"),
    ("SRP-", "SRP_SHA"),
    ("PSK-", "PSK"),
    ("AECDH-", "ECDH_anon"),
    ("ADH-", "DH_anon"),
)


def iana_cipher_name(openssl_name: str) -> str:
    """IANA (RFC) name of an OpenSSL cipher-suite name, as DCMTK prints them.

    ``ECDHE-RSA-AES128-GCM-SHA256`` -> ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``.
    Names already in IANA form (TLS 1.3) and unknown shapes are returned unchanged.
    """
    if openssl_name.startswith("TLS_"):
        return openssl_name
    exchange = "RSA"
    rest = openssl_name
    for prefix, iana in _KEY_EXCHANGES:
        if rest.startswith(prefix):
            exchange, rest = iana, rest[len(prefix) :]
            break
    if rest == "CHACHA20-POLY1305":
        return f"TLS_{exchange}_WITH_CHACHA20_POLY1305_SHA256"
    tokens = rest.split("-")
    mac = tokens[-1] if tokens[-1].startswith(("SHA", "MD5")) and len(tokens) > 1 else ""
    body = tokens[:-1] if mac else tokens
    if body == ["DES", "CBC3"]:
        cipher = "3DES_EDE_CBC"
    elif body == ["NULL"]:
        cipher = "NULL"
    elif body and body[0].rstrip("0123456789").isalpha() and body[0][-1:].isdigit():
        name = body[0].rstrip("0123456789")
        bits = body[0][len(name) :]
        modes = {(): "CBC", ("CBC",): "CBC", ("GCM",): "GCM", ("CCM",): "CCM", ("CCM8",): "CCM_8"}
        mode = modes.get(tuple(body[1:]))
        if mode is None:
            return openssl_name
        cipher = f"{name}_{bits}_{mode}"
        if mode.startswith("CCM"):
            mac = ""  # AES-CCM suites carry no hash in their IANA names
    else:
        return openssl_name
    return f"TLS_{exchange}_WITH_{cipher}" + (f"_{mac}" if mac else "")


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def _error(message: str) -> Exit:
    return Exit(1, stderr=error_block(HEADER, message))


def _int32(value: int) -> int:
    # echoscu.cc casts timeouts to Sint32/int; huge values wrap as they do there.
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _log_setup(parsed: ParsedArgs) -> LogSetup:
    level: int | None = None
    names = {"--debug": Level.DEBUG, "--verbose": Level.INFO, "--quiet": Level.FATAL}
    for name, _ in parsed.block(_LOG_BLOCK):
        level = names[name]
    level_text = ""
    position = parsed.find("--log-level")
    if position is not None:
        if level is not None:
            raise CommandLineError("--log-level not allowed with --verbose, --debug or --quiet")
        level_text = parsed.value(position)
        level = parse_level(level_text)
        if level is None:
            raise CommandLineError("Invalid log level for --log-level option")
    position = parsed.find("--log-config")
    if position is not None:
        if level_text:
            raise CommandLineError("--log-config not allowed with --log-level")
        if level is not None:
            raise CommandLineError("--log-config not allowed with --verbose, --debug or --quiet")
        # Reading -lc files (and logging through them) is loaded only when one is given.
        from echoprobe.report.dcmtk_config import (  # noqa: PLC0415
            LogConfigError,
            load_log_config,
        )

        try:
            config = load_log_config(parsed.value(position), parsed.program)
        except LogConfigError as exc:
            raise CommandLineError(str(exc)) from None
        return LogSetup(level=Level.INFO, config=config)
    return LogSetup(level=Level.WARN if level is None else level)


def _require(option: str, condition: bool, base: str = _TLS_DEPENDENCY) -> None:
    if not condition:
        raise CommandLineError(f"{option} only allowed with {base}")


def _tls_settings(parsed: ParsedArgs) -> TlsSettings:
    # Order and messages of DcmTLSOptions::parseArguments (DCMTK 3.6.8, requester role).
    secure = authenticate = False
    key_file = cert_file = None
    for name, position in parsed.block(_TLS_BLOCK):
        secure = name != "--disable-tls"
        authenticate = name == "--enable-tls"
        if authenticate:
            key_file, cert_file = parsed.value(position, 0), parsed.value(position, 1)
    password: str | None = None
    for name, position in parsed.block(_PASSWORD_BLOCK):
        _require(name, authenticate, "--enable-tls")
        if name == "--use-passwd":
            password = parsed.value(position)
        else:
            password = None if name == "--std-passwd" else ""
    key_format = KeyFormat.PEM
    for name, _ in parsed.block(_KEY_FORMAT_BLOCK):
        _require(name, secure)
        key_format = KeyFormat.PEM if name == "--pem-keys" else KeyFormat.DER
    crl_mode = CrlMode.NONE
    for name, _ in parsed.block(_CRL_BLOCK):
        _require(name, secure)
        crl_mode = CrlMode.LEAF if name == "--enable-crl-vfy" else CrlMode.ALL
    if parsed.has("--enable-crl-vfy") and parsed.has("--enable-crl-all"):
        # Measured with DCMTK: refused in either order (not a rightmost-wins pair).
        raise CommandLineError("--enable-crl-all not allowed with --enable-crl-vfy")
    server_name = None
    at = parsed.find("--request-sni")
    if at is not None:
        server_name = parsed.value(at)
    if parsed.has("--no-sni"):
        if server_name is not None:
            raise CommandLineError("--no-sni not allowed with --request-sni")
        server_name = None
    seed_file = None
    at = parsed.find("--seed")
    if at is not None:
        _require("--seed", secure)
        seed_file = parsed.value(at)
    write_seed_file = None
    for name, position in parsed.block(_SEED_BLOCK):
        _require(name, secure)
        _require(name, seed_file is not None, "--seed")
        write_seed_file = seed_file if name == "--write-seed" else parsed.value(position)
    peer_certificate = PeerCertificate.REQUIRE
    for name, _ in parsed.block(_PEER_BLOCK):
        _require(name, secure)
        peer_certificate = (
            PeerCertificate.REQUIRE if name == "--require-peer-cert" else PeerCertificate.IGNORE
        )
    profile = TlsProfile.BCP195_RFC8996
    for name, _ in parsed.block(_PROFILE_BLOCK):
        # Upstream checks +pa under the name of +pb; users see that message.
        _require("--profile-basic" if name == "--profile-aes" else name, secure)
        profile = _PROFILES[name]
    for name in ("--add-cert-file", "--add-cert-dir", "--add-crl-file"):
        if parsed.has(name):
            _require(name, secure)
    if parsed.has("--cipher"):
        _require("--cipher", secure)
        if profile == TlsProfile.BCP195_EXTENDED:
            raise CommandLineError("--cipher not allowed with --profile-bcp195-ex")
    return TlsSettings(
        enabled=secure,
        authenticate=authenticate,
        key_file=key_file,
        cert_file=cert_file,
        password=password,
        key_format=key_format,
        ca_files=parsed.values_of("--add-cert-file"),
        ca_dirs=parsed.values_of("--add-cert-dir"),
        crl_files=parsed.values_of("--add-crl-file"),
        crl_mode=crl_mode,
        profile=profile,
        ciphers=parsed.values_of("--cipher"),
        server_name=server_name,
        seed_file=seed_file,
        write_seed_file=write_seed_file,
        peer_certificate=peer_certificate,
    )


def _signed(parsed: ParsedArgs, option: str, low: int) -> int | None:
    position = parsed.find(option)
    return None if position is None else value_signed(option, parsed.value(position), low)


def _unsigned(parsed: ParsedArgs, option: str, low: int, high: int | None = None) -> int | None:
    position = parsed.find(option)
    if position is None:
        return None
    return value_unsigned(option, parsed.value(position), low, high)


def _string(parsed: ParsedArgs, option: str, default: str) -> str:
    position = parsed.find(option)
    return default if position is None else parsed.value(position)


def _late_exit(setup: LogSetup, records: tuple[LogRecord, ...], message: str) -> Exit:
    # After logging is configured DCMTK's printError honours quiet mode.
    text = "" if setup.quiet else error_block(HEADER, message)
    if setup.config is None:
        logged = "".join(render_default(record.level, record.message) for record in records)
        return Exit(1, stderr=logged + text)
    return Exit(1, stderr=text, log=setup, records=records)


def parse_echoscu(argv: Sequence[str], prog: str) -> Parsed:
    """Evaluate an ``echoscu`` command line (``argv`` without argv[0]) in DCMTK's order.

    ``prog`` is argv[0] as invoked; ``--arguments`` and ``${appname}`` show it.
    """
    try:
        expanded = expand_command_files(argv)
    except CommandLineError as exc:
        return _error(exc.message)
    parsed = TABLE.parse(expanded, prog)
    if parsed.status == ParseStatus.NO_ARGUMENTS or (
        parsed.status == ParseStatus.EXCLUSIVE and parsed.has("--help")
    ):
        return Exit(0, stdout=usage_text())
    if not parsed.ok:
        return _error(parsed.message)
    if parsed.exclusive:
        if parsed.has("--version"):
            return Exit(0, stdout=version_text())
        if parsed.has("--list-ciphers"):
            return Exit(0, stdout=cipher_list_text())
    verify_cert_at = parsed.find("--verify-cert")
    root_cert_at = parsed.find("--is-root-cert")
    peer, port = "localhost", 104  # DCMTK's initial values, unused by +vc/+rc
    try:
        if verify_cert_at is None and root_cert_at is None:
            peer = parsed.param(1)
            port = param_unsigned(parsed.param(2), 1, 65535)
        setup = _log_setup(parsed)
    except CommandLineError as exc:
        return _error(exc.message)
    records: tuple[LogRecord, ...] = ()
    if parsed.has("--arguments"):
        records = (LogRecord(Level.INFO, arguments_message(parsed), ROOT, forced=True),)
    try:
        config = _evaluate(parsed, peer, port)
    except CommandLineError as exc:
        return _late_exit(setup, records, exc.message)
    return replace(
        config,
        log=setup,
        startup=records,
        verify_cert=None if verify_cert_at is None else parsed.value(verify_cert_at),
        is_root_cert=None if root_cert_at is None else parsed.value(root_cert_at),
    )


def _evaluate(parsed: ParsedArgs, peer: str, port: int) -> EchoscuConfig:
    calling_ae = _string(parsed, "--aetitle", "ECHOSCU")
    called_ae = _string(parsed, "--call", "ANY-SCP")
    connect = _signed(parsed, "--timeout", 1)
    socket_timeout = _signed(parsed, "--socket-timeout", -1)
    acse = _signed(parsed, "--acse-timeout", 1)
    dimse = _signed(parsed, "--dimse-timeout", 1)
    requested_pdu = _unsigned(parsed, "--max-pdu", MIN_PDU, MAX_PDU) or DEFAULT_PDU
    repeat = _unsigned(parsed, "--repeat", 1) or 1
    abort = parsed.has("--abort")
    num_ts = _unsigned(parsed, "--propose-ts", 1, MAX_PROPOSED_TS) or 1
    num_pc = _unsigned(parsed, "--propose-pc", 1, MAX_PROPOSED_PC) or 1
    tls = _tls_settings(parsed)
    warnings: tuple[str, ...] = ()
    max_pdu = requested_pdu
    if max_pdu % 2:
        max_pdu -= 1
        warnings = (f"ASSOC: PDV receive length {requested_pdu} is odd (using {max_pdu})",)
    wrapped_connect = None if connect is None else _int32(connect)
    wrapped_acse = 30 if acse is None else _int32(acse)
    wrapped_socket = 60 if socket_timeout is None else _int32(socket_timeout)
    return EchoscuConfig(
        peer=peer,
        port=port,
        program=parsed.program,
        calling_ae=calling_ae,
        called_ae=called_ae,
        num_ts=num_ts,
        num_pc=num_pc,
        connect_timeout=None if wrapped_connect is None or wrapped_connect < 0 else wrapped_connect,
        socket_timeout=max(wrapped_socket, -1),
        acse_timeout=wrapped_acse if wrapped_acse > 0 else None,
        dimse_timeout=None if dimse is None else max(_int32(dimse), 0),
        max_pdu=max_pdu,
        repeat=repeat,
        abort=abort,
        tls=tls,
        assoc_warnings=warnings,
    )
