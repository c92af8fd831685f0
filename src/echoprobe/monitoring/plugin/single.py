"""One peer's `ProbeResult` → its verdict: state, one-line text, performance data, details.

Rules:
- Pure: the result and the settings in, a `PeerVerdict` out.
- The state is the outcome's (see `policy`); when every C-ECHO was answered, the `-w` / `-c`
  thresholds on the response time (`time`, the whole association from resolution to close)
  may raise it, never lower it.
- Where `check_tcp` has wording for the same event, the text uses it: "connect to address A
  and port P: Connection refused", "Invalid hostname, address or socket: H", "Socket timeout
  after N seconds", "N second response time on A port P".
- Performance data: `time` (with the thresholds, min 0, max the timeout, as `check_tcp`), then
  each phase that was measured (`connect`, `tls`, `associate`, `echo`, `release`), in seconds.
  A phase never reached is left out rather than written as 0.
- Details (the long output) carry the peer's own words: reject result/source/reason, abort
  source/reason, DIMSE status and error comment, the release trouble, the peer's
  implementation class UID and version name, the TLS facts. `-D` (`cert_days`) judges the days
  the peer's certificate has left, counted from `Judgement.now`. `-v` adds the phase timings and
  the negotiated parameters; `-vv` the outcome name and failing phase.
- Text from the peer (error comments, names) is made single-line here; the output formats
  decide what else to escape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from echoprobe.dimse.status import status_text
from echoprobe.monitoring.plugin.perfdata import PerfValue, seconds
from echoprobe.monitoring.plugin.policy import OutcomePolicy
from echoprobe.monitoring.plugin.ranges import Thresholds
from echoprobe.monitoring.plugin.states import State, worst
from echoprobe.results import Outcome, ProbeResult

PHASE_METRICS = ("connect", "tls", "associate", "echo", "release")
_TIMING_ORDER = ("resolve", *PHASE_METRICS, "total")

TIMEOUT_OUTCOMES = frozenset(
    {
        Outcome.CONNECT_TIMEOUT,
        Outcome.TLS_HANDSHAKE_TIMEOUT,
        Outcome.ACSE_TIMEOUT,
        Outcome.DIMSE_TIMEOUT,
        Outcome.DEADLINE_EXCEEDED,
        Outcome.TIMEOUT,
    }
)

# What we were waiting for when a phase ran out of time.
_WAITING = {
    "resolve": "resolving",
    "connect": "connecting to",
    "tls": "TLS handshake with",
    "associate": "no A-ASSOCIATE response from",
    "echo": "no C-ECHO-RSP from",
    "release": "no A-RELEASE-RP from",
}


@dataclass(frozen=True, slots=True)
class Judgement:
    """How to judge results: thresholds, outcome states, the timeouts (for wording and the
    perfdata maximum) and the verbosity of the details."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    policy: OutcomePolicy = field(default_factory=OutcomePolicy)
    timeout: float = 10.0  # a peer's own deadline (seconds)
    check_timeout: float = 10.0  # the whole check's -t
    release_timeout: float | None = None  # None: the peer's deadline bounds the release too
    verbose: int = 0
    cert_days: Thresholds | None = None  # -D: ranges on the days the peer's certificate has left
    now: float | None = None  # the epoch time `cert_days` counts from


@dataclass(frozen=True, slots=True)
class PeerVerdict:
    """What the check says about one peer."""

    result: ProbeResult
    state: State
    text: str
    perfdata: tuple[PerfValue, ...]
    details: tuple[str, ...]

    @property
    def label(self) -> str:
        """The peer as the operator knows it: the inventory name, else the target."""
        return self.result.name or self.result.target

    @property
    def time_s(self) -> float | None:
        """The response time in seconds (None when nothing was measured)."""
        total = self.result.timings_ms.get("total")
        return None if total is None else total / 1000.0


def one_line(text: str) -> str:
    """Peer-supplied text on one line (control characters become spaces)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def seconds_text(value: float) -> str:
    """`2` for 2.0, `2.5` for 2.5: timeouts as the user wrote them."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def judge(result: ProbeResult, how: Judgement) -> PeerVerdict:
    """The verdict on one probe result."""
    state = how.policy.state_of(result.outcome)
    time_ms = result.timings_ms.get("total")
    threshold_note = ""
    if result.outcome.echo_succeeded and time_ms is not None:
        value = time_ms / 1000.0
        by_time = how.thresholds.state(value)
        if by_time is not State.OK:
            state = worst(state, by_time)
            threshold_note = _threshold_note(how, value)
    days = days_left(result, how.now)
    if how.cert_days is not None and days is not None:
        by_cert = how.cert_days.state(days)
        if by_cert is not State.OK:
            state = worst(state, by_cert)
            threshold_note += (
                f", the peer's certificate expires in {days:.0f} days"
                if days >= 0
                else f", the peer's certificate expired {-days:.0f} days ago"
            )
    text = _text(result, how) + threshold_note
    return PeerVerdict(
        result=result,
        state=state,
        text=one_line(text),
        perfdata=_perfdata(result, how, days),
        details=tuple(one_line(line) for line in _details(result, how, text)),
    )


def _where(result: ProbeResult) -> str:
    return f"{result.host} port {result.port}, called AE {result.called_ae}"


def _threshold_note(how: Judgement, value: float) -> str:
    triggered = how.thresholds.triggered(value)
    if triggered is None:
        return ""
    option = "-c" if triggered is how.thresholds.critical else "-w"
    if triggered.upper_bound is not None:
        return f", slower than {option} {triggered.text}"
    relation = "inside" if triggered.inside else "outside"
    return f", {relation} {option} {triggered.text}"


def _text(result: ProbeResult, how: Judgement) -> str:
    outcome = result.outcome
    time_ms = result.timings_ms.get("total")
    if outcome.echo_succeeded:
        echoes = f"{result.echoes} C-ECHO" + ("" if result.echoes == 1 else "s")
        response = "" if time_ms is None else f"{time_ms / 1000.0:.3f} second response time on "
        text = (
            f"{response}{result.host} port {result.port} (called AE {result.called_ae}, {echoes})"
        )
        if outcome is Outcome.RELEASE_TIMEOUT:
            limit = how.release_timeout if how.release_timeout is not None else how.timeout
            return f"{text}, but no A-RELEASE-RP within {seconds_text(limit)} seconds"
        if outcome is Outcome.RELEASE_FAILED:
            return f"{text}, but the release failed: {result.error or 'no reason given'}"
        return text
    if outcome is Outcome.DNS_ERROR:
        return f"Invalid hostname, address or socket: {result.host}"
    if outcome is Outcome.CONNECTION_REFUSED:
        return f"connect to address {result.host} and port {result.port}: Connection refused"
    if outcome in TIMEOUT_OUTCOMES:
        waiting = _WAITING.get(result.phase or "", "waiting for")
        return (
            f"Socket timeout after {seconds_text(how.timeout)} seconds ({waiting} {_where(result)})"
        )
    if outcome is Outcome.CANCELLED:
        return (
            f"Socket timeout: the check's {seconds_text(how.check_timeout)} seconds ran out "
            f"before the peer answered ({_where(result)})"
        )
    if outcome is Outcome.NOT_STARTED:
        return (
            f"not checked: the check's {seconds_text(how.check_timeout)} seconds ran out "
            f"first ({_where(result)})"
        )
    if outcome is Outcome.ECHO_FAILED_STATUS and result.status is not None:
        comment = result.detail.get("error_comment")
        said = f': "{comment}"' if comment else ""
        return (
            f"C-ECHO status {result.status:04X}H, {status_text(result.status)}{said} "
            f"({_where(result)})"
        )
    if outcome is Outcome.INVALID_TARGET:
        source = result.detail.get("source")
        where = f" ({source})" if source else ""
        return f"invalid target{where}: {result.error or 'malformed'}"
    if outcome is Outcome.INTERNAL_ERROR:
        return f"internal error: {result.error or 'unknown'} ({_where(result)})"
    return f"{result.error or outcome.value} ({_where(result)})"


def days_left(result: ProbeResult, now: float | None) -> float | None:
    """Days until the end of validity of the peer's TLS certificate (None: unknown)."""
    not_after = None if result.peer is None else result.peer.tls_peer_not_after
    if not_after is None or now is None:
        return None
    try:
        end = datetime.fromisoformat(not_after)
    except ValueError:
        return None
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return (end.timestamp() - now) / 86400.0


def _perfdata(result: ProbeResult, how: Judgement, days: float | None) -> tuple[PerfValue, ...]:
    timings = result.timings_ms
    values = [
        seconds(
            "time",
            timings.get("total"),
            thresholds=(how.thresholds.warning, how.thresholds.critical),
            maximum=how.timeout,
        )
    ]
    values.extend(seconds(name, timings[name]) for name in PHASE_METRICS if name in timings)
    if days is not None and how.cert_days is not None:
        values.append(
            PerfValue(
                "cert_days", round(days, 2), "", how.cert_days.warning, how.cert_days.critical
            )
        )
    return tuple(values)


def _ms(value: float) -> str:
    return f"{value:.3f} ms" if math.isfinite(value) else "?"


def _details(result: ProbeResult, how: Judgement, text: str) -> list[str]:
    lines: list[str] = []
    detail = result.detail
    if result.outcome in (Outcome.REJECTED_PERMANENT, Outcome.REJECTED_TRANSIENT):
        lines.append(
            f"A-ASSOCIATE-RJ: result {detail.get('result', '?')}, source "
            f"{detail.get('source', '?')}, reason {detail.get('reason', '?')}: {result.error}"
        )
    elif result.outcome is Outcome.ABORTED_BY_PEER:
        lines.append(
            f"A-ABORT: source {detail.get('source', '?')}, reason {detail.get('reason', '?')}: "
            f"{result.error}"
        )
    elif result.outcome is Outcome.DNS_ERROR:
        lines.append(f"resolver: {result.error}")
    elif result.outcome is Outcome.ECHO_FAILED_STATUS:
        status = detail.get("status", result.status)
        comment = detail.get("error_comment")
        if isinstance(status, int):
            lines.append(
                f"C-ECHO-RSP status {status:04X}H ({status_text(status)})"
                + (f', error comment "{comment}"' if comment else "")
            )
    elif result.error and result.error not in text and not result.outcome.echo_succeeded:
        lines.append(f"error: {result.error}")
    release_error = detail.get("release_error")
    if release_error and result.outcome is not Outcome.SUCCESS:
        lines.append(f"release: {release_error}")
    peer = result.peer
    if peer is not None:
        version = peer.implementation_version_name
        lines.append(
            f"peer implementation: class UID {peer.implementation_class_uid or '?'}"
            + (f", version name {version}" if version else "")
            + (f", max PDU {peer.max_pdu}" if peer.max_pdu is not None else "")
        )
        if peer.tls_protocol:
            lines.append(
                f"TLS: {peer.tls_protocol}, cipher {peer.tls_cipher or '?'}"
                + (f", peer certificate {peer.tls_peer_subject}" if peer.tls_peer_subject else "")
                + (f", valid until {peer.tls_peer_not_after}" if peer.tls_peer_not_after else "")
            )
    if how.verbose >= 1:
        known = [k for k in _TIMING_ORDER if k in result.timings_ms]
        known += [k for k in result.timings_ms if k not in _TIMING_ORDER]
        timings = ", ".join(f"{k} {_ms(result.timings_ms[k])}" for k in known)
        if timings:
            lines.append(f"timings: {timings}")
        lines.append(
            f"association: calling AE {result.calling_ae}, called AE {result.called_ae}, "
            f"{result.host} port {result.port}, {result.echoes} C-ECHO(s) answered"
        )
        if peer is not None and peer.transfer_syntax:
            lines.append(
                f"negotiated: transfer syntax {peer.transfer_syntax}, "
                f"presentation context {peer.context_id}"
            )
    if how.verbose >= 2:
        lines.append(f"outcome: {result.outcome.value}, phase: {result.phase or '-'}")
        if result.tags:
            lines.append(f"tags: {', '.join(result.tags)}")
    return lines
