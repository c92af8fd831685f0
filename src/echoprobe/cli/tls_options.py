"""The TLS options of every `echoprobe` command, spelled as DCMTK spells them.

Rules:

* One definition: `sweep`, `load`, `check`, `scp` and every later command call
  `add_tls_options()` and `tls_config()`; nothing else declares a TLS option.
* Spellings and help texts come from `echoscu`'s own option table (`echoscu_options.TABLE`),
  so the two cannot drift; `echoscu` keeps its DCMTK-exact parser, which this module only reads.
* The role decides what applies, as in DCMTK's `DcmTLSOptions` (dcmtls/libsrc/tlsopt.cc): a
  requester (`sweep`, `load`, `check`) also has `+tla` and `--request-sni`; an acceptor
  (`scp`) needs `+tls KEY CERT` and also has `-vc` (verify the client's certificate only when
  one is presented). `-rc` (require, the default) and `-ic` (ignore) are shared.
* Checks raise `UsageError` (exit 2) and never open the key: files are read when the TLS
  context is built. `+cra` with `+crv` is refused with DCMTK's message.
* The parser needs `prefix_chars="-+"`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echoprobe.cli.echoscu_options import TABLE

if TYPE_CHECKING:
    from echoprobe.net.tls import TLSConfig

__all__ = ["NEEDS_TLS_REQUESTER", "Role", "TLSUsageError", "add_tls_options", "tls_config"]

NEEDS_TLS_REQUESTER = "TLS options need +tls KEY CERT or +tla (--anonymous-tls)"
NEEDS_TLS_ACCEPTOR = "TLS options need +tls KEY CERT"
CRL_CONFLICT = "--enable-crl-all not allowed with --enable-crl-vfy"


class TLSUsageError(Exception):
    """A TLS option combination that cannot work (the caller reports it as a usage error)."""


class Role(Enum):
    REQUESTER = "requester"  # opens associations: sweep, load, check
    ACCEPTOR = "acceptor"  # accepts them: scp


@dataclass(frozen=True, slots=True)
class _Spec:
    """One option: its long spelling (the key into echoscu's table) and argparse settings."""

    long: str
    roles: frozenset[Role]
    settings: tuple[tuple[str, Any], ...]
    help: str = ""  # when echoscu has no such option (or its text says "SCP")


_BOTH = frozenset(Role)
_REQUESTER = frozenset({Role.REQUESTER})
_ACCEPTOR = frozenset({Role.ACCEPTOR})

# The profiles `net.tls.TLSProfile` knows, by echoscu's long spelling and short value.
_PROFILES = (
    ("--profile-8996", "+pg"),
    ("--profile-8996-mod", "+pm"),
    ("--profile-bcp195-nd", "+py"),
    ("--profile-bcp195", "+px"),
    ("--profile-bcp195-ex", "+pz"),
    ("--profile-basic", "+pb"),
    ("--profile-aes", "+pa"),
    ("--profile-null", "+pn"),
)


def _specs() -> tuple[_Spec, ...]:
    one: tuple[tuple[str, Any], ...] = (("metavar", "FILE"), ("action", "append"), ("default", []))
    specs = [
        _Spec(
            "--enable-tls",
            _BOTH,
            (("dest", "enable_tls"), ("nargs", 2), ("metavar", ("KEY", "CERT"))),
            "DICOM over TLS with our private key KEY and certificate CERT (PEM unless -der)",
        ),
        _Spec("--anonymous-tls", _REQUESTER, (("action", "store_true"),)),
        _Spec("--use-passwd", _BOTH, (("metavar", "PASSWORD"),), "the private key's password"),
        _Spec(
            "--null-passwd",
            _BOTH,
            (("dest", "use_passwd"), ("action", "store_const"), ("const", "")),
        ),
        _Spec(
            "--pem-keys",
            _BOTH,
            (("dest", "key_format"), ("action", "store_const"), ("const", "pem")),
        ),
        _Spec(
            "--der-keys",
            _BOTH,
            (("dest", "key_format"), ("action", "store_const"), ("const", "der")),
        ),
        _Spec("--add-cert-file", _BOTH, one, "trust the certificates in FILE (repeatable)"),
        _Spec(
            "--add-cert-dir",
            _BOTH,
            (("metavar", "DIR"), ("action", "append"), ("default", [])),
            "trust the certificates in DIR (repeatable)",
        ),
        _Spec(
            "--add-crl-file",
            _BOTH,
            one,
            "use the certificate revocation list in FILE (repeatable; implies --enable-crl-vfy)",
        ),
        _Spec("--enable-crl-vfy", _BOTH, (("action", "store_true"),)),
        _Spec("--enable-crl-all", _BOTH, (("action", "store_true"),)),
    ]
    for long, short in _PROFILES:
        specs.append(
            _Spec(
                long,
                _BOTH,
                (("dest", "tls_profile"), ("action", "store_const"), ("const", short)),
            )
        )
    specs += [
        _Spec(
            "--cipher",
            _BOTH,
            (("dest", "tls_ciphers"), ("metavar", "SUITE"), ("action", "append"), ("default", [])),
            "add the TLS 1.2 cipher suite SUITE to the profile's (repeatable)",
        ),
        _Spec("--request-sni", _REQUESTER, (("metavar", "NAME"),), "send NAME as the server name"),
        _Spec(
            "--require-peer-cert",
            _BOTH,
            (("dest", "peer_cert"), ("action", "store_const"), ("const", "require")),
            "verify the peer's certificate, fail without one (default)",
        ),
        _Spec(
            "--verify-peer-cert",
            _ACCEPTOR,
            (("dest", "peer_cert"), ("action", "store_const"), ("const", "check")),
            "verify the client's certificate if it presents one",
        ),
        _Spec(
            "--ignore-peer-cert",
            _BOTH,
            (("dest", "peer_cert"), ("action", "store_const"), ("const", "ignore")),
            "do not verify the peer's certificate",
        ),
    ]
    return tuple(specs)


_SPECS = _specs()
_SHORT_ACCEPTOR_ONLY = {"--verify-peer-cert": "-vc"}  # not an echoscu option (requester role)


def _spellings(spec: _Spec) -> tuple[list[str], str]:
    """The option strings (short first, as DCMTK's help lists them) and echoscu's help."""
    option = TABLE.option(spec.long)
    if option is None:
        short = _SHORT_ACCEPTOR_ONLY.get(spec.long, "")
        return [s for s in (short, spec.long) if s], spec.help
    names = [s for s in (option.short, option.long) if s]
    return names, spec.help or option.help.replace("\n", " ")


def add_tls_options(p: argparse.ArgumentParser, role: Role = Role.REQUESTER) -> None:
    """DCMTK's TLS options for `role` (the parser needs `prefix_chars="-+"`)."""
    title = "transport layer security (as echoscu)"
    if role is Role.ACCEPTOR:
        title = "transport layer security (as DCMTK's storescp)"
    g = p.add_argument_group(title)
    for spec in _SPECS:
        if role not in spec.roles:
            continue
        names, text = _spellings(spec)
        g.add_argument(*names, help=text, **dict(spec.settings))
    p.set_defaults(tls_role=role.value)


def _given_extras(args: argparse.Namespace) -> bool:
    return bool(
        args.use_passwd is not None
        or args.key_format is not None
        or args.add_cert_file
        or args.add_cert_dir
        or args.add_crl_file
        or args.enable_crl_vfy
        or args.enable_crl_all
        or args.tls_profile is not None
        or args.tls_ciphers
        or getattr(args, "request_sni", None) is not None
        or args.peer_cert is not None
    )


def tls_config(
    args: argparse.Namespace, fail: Callable[[str], Exception] | None = None
) -> TLSConfig | None:
    """The TLS settings the options ask for (None: plain TCP); checked, not yet loaded.

    Raises `fail(message)` (default `TLSUsageError`) for a combination that cannot work."""
    error = fail or TLSUsageError
    role = Role(getattr(args, "tls_role", Role.REQUESTER.value))
    anonymous = bool(getattr(args, "anonymous_tls", False))
    if args.enable_tls is None and not anonymous:
        if _given_extras(args):
            raise error(NEEDS_TLS_ACCEPTOR if role is Role.ACCEPTOR else NEEDS_TLS_REQUESTER)
        return None
    if args.enable_tls is not None and anonymous:
        raise error("give either +tls KEY CERT or +tla, not both")
    if args.enable_crl_all and args.enable_crl_vfy:
        raise error(CRL_CONFLICT)
    from echoprobe.net.tls import (  # noqa: PLC0415 - ssl only with TLS
        CRLMode,
        KeyFormat,
        PeerVerification,
        TLSConfig,
        TLSProfile,
    )

    key, cert = args.enable_tls if args.enable_tls is not None else (None, None)
    for path in (key, cert, *args.add_cert_file, *args.add_crl_file):
        if path is not None and not Path(path).is_file():
            raise error(f"cannot read {path}")
    for path in args.add_cert_dir:
        if not Path(path).is_dir():
            raise error(f"not a directory: {path}")
    crl_mode = CRLMode.NONE
    if args.enable_crl_all:
        crl_mode = CRLMode.ALL
    elif args.enable_crl_vfy:
        crl_mode = CRLMode.LEAF
    return TLSConfig(
        profile=TLSProfile(args.tls_profile or "+pg"),
        key_file=key,
        cert_file=cert,
        key_format=KeyFormat(args.key_format or "pem"),
        password=args.use_passwd,
        ca_files=tuple(args.add_cert_file),
        ca_dirs=tuple(args.add_cert_dir),
        crl_files=tuple(args.add_crl_file),
        crl_mode=crl_mode,
        verify_peer=PeerVerification(args.peer_cert or "require"),
        server_name=getattr(args, "request_sni", None),
        ciphers=tuple(args.tls_ciphers),
    )
