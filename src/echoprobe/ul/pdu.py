"""The seven PDUs of PS3.8 §9.3 and their items, as immutable values.

Rules:
- Values only: no I/O, no encoding logic (see `codec.py`).
- AE titles are kept as the 16 raw bytes of the wire, so that what a peer sent is never altered;
  `ae_text()` gives the trimmed text.
- Items a decoder does not know are kept as `RawItem` (type + body), skipped by their length,
  so that re-encoding gives back the same bytes.
"""

from __future__ import annotations

from echoprobe._values import field, value
from echoprobe.ul.constants import AE_TITLE_LENGTH, APPLICATION_CONTEXT_NAME


def ae_bytes(title: str | bytes) -> bytes:
    """An AE title as its 16 wire bytes: truncated to 16 bytes and space-padded (as DCMTK)."""
    raw = title.encode("latin-1", "replace") if isinstance(title, str) else title
    return raw[:AE_TITLE_LENGTH].ljust(AE_TITLE_LENGTH, b" ")


def ae_text(raw: bytes) -> str:
    """The text of a wire AE title: leading and trailing spaces are not significant (PS3.5)."""
    return raw.decode("latin-1").strip(" \x00")


@value
class RawItem:
    """An item or sub-item kept as it came: its type byte and its body (without the header)."""

    item_type: int
    data: bytes


@value
class RoleSelection:
    """SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4, item 54H)."""

    sop_class_uid: str
    scu_role: int
    scp_role: int


@value
class AsyncOpsWindow:
    """Asynchronous Operations Window sub-item (PS3.7 D.3.3.3, item 53H)."""

    max_invoked: int
    max_performed: int


@value
class UserInformation:
    """User Information item (PS3.8 §9.3.2.3 / §9.3.3.3, item 50H).

    `max_length` None means the sub-item was absent (PS3.8 makes it mandatory; peers omit it);
    0 means "no limit" (Annex D.1).
    """

    max_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops_window: AsyncOpsWindow | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    other: tuple[RawItem, ...] = ()


@value
class PresentationContextRQ:
    """Presentation Context item of an A-ASSOCIATE-RQ (PS3.8 §9.3.2.2, item 20H).

    `reserved` is the byte at offset 6 of the item, reserved in a request. DCMTK sends 0xFF there
    and echoprobe does the same by default, so that its request is byte-identical to DCMTK's.
    """

    context_id: int
    abstract_syntax: str | None
    transfer_syntaxes: tuple[str, ...]
    reserved: int = 0xFF
    other: tuple[RawItem, ...] = ()


@value
class PresentationContextAC:
    """Presentation Context item of an A-ASSOCIATE-AC (PS3.8 §9.3.3.2, item 21H)."""

    context_id: int
    result: int
    transfer_syntax: str | None
    other: tuple[RawItem, ...] = ()


@value
class AssociateRQ:
    """A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2)."""

    called_ae: bytes
    calling_ae: bytes
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation = field(default_factory=UserInformation)
    application_context: str | None = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1
    other: tuple[RawItem, ...] = ()


@value
class AssociateAC:
    """A-ASSOCIATE-AC PDU (PS3.8 §9.3.3). The AE fields echo the request and are not tested."""

    called_ae: bytes
    calling_ae: bytes
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation | None = field(default_factory=UserInformation)
    application_context: str | None = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1
    other: tuple[RawItem, ...] = ()


@value
class AssociateRJ:
    """A-ASSOCIATE-RJ PDU (PS3.8 §9.3.4): raw result, source and reason bytes."""

    result: int
    source: int
    reason: int


@value
class PDV:
    """A Presentation Data Value item (PS3.8 §9.3.5.1, Annex E).

    `control` is the message control header: bit 0 set = command, bit 1 set = last fragment.
    """

    context_id: int
    control: int
    data: bytes

    @property
    def is_command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 0x02)


@value
class PDataTF:
    """P-DATA-TF PDU (PS3.8 §9.3.5): zero or more PDVs (zero is legal)."""

    pdvs: tuple[PDV, ...]


@value
class ReleaseRQ:
    """A-RELEASE-RQ PDU (PS3.8 §9.3.6)."""


@value
class ReleaseRP:
    """A-RELEASE-RP PDU (PS3.8 §9.3.7)."""


@value
class Abort:
    """A-ABORT PDU (PS3.8 §9.3.8): source 0 service user, 2 service provider; reason."""

    source: int = 0
    reason: int = 0


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort
