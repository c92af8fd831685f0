"""`echoprobe check` / `check_dicom` through subprocesses, against `EchoSCP` peers with faults.

Every peer is on loopback (a simulated fleet is many 127.0.13.x addresses sharing one port);
the SCPs run in a thread of this process and stop at teardown (or by themselves); every
subprocess wait is bounded. Every output must parse as plugin output (tests/support/
plugin_output.py). Times are only asserted as generous upper bounds where the issue promises
one (the check ends by -t), or as lower bounds that a fault injects (a delayed answer).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from echoprobe.net.server import Faults
from tests.conftest import IN_CI, ScpFactory
from tests.support.plugin_output import parse_output
from tests.support.scp_fleet import closed_port
from tests.support.servers import ThreadedEchoSCP, has_ipv6_loopback

BIN = Path(sys.executable).parent
ECHOPROBE = BIN / "echoprobe"
CHECK_DICOM = BIN / "check_dicom"
SLACK = 4.0  # seconds a busy 2-core machine may add to -t (process start-up included)


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def check(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run([str(ECHOPROBE), "check", *args], timeout)


@pytest.fixture
def pacs(scp_factory: ScpFactory) -> ThreadedEchoSCP:
    """A healthy SCP that answers only to the called AE title PACS."""
    return scp_factory(ae_titles=["PACS"])


# --- one peer --------------------------------------------------------------------------------


def test_healthy_peer_is_ok(pacs: ThreadedEchoSCP) -> None:
    done = check("-H", "127.0.0.1", "-p", str(pacs.port), "-aec", "PACS", "-w", "5", "-c", "9")
    assert done.returncode == 0, done.stdout + done.stderr
    out = parse_output(done.stdout)
    assert out.state == "OK"
    assert f"on 127.0.0.1 port {pacs.port} (called AE PACS, 1 C-ECHO)" in out.text
    assert set(out.perfdata) == {"time", "connect", "associate", "echo", "release"}
    time_item = out.perfdata["time"]
    assert (time_item["uom"], time_item["warn"], time_item["crit"]) == ("s", "5", "9")
    assert (time_item["min"], time_item["max"]) == ("0.000000", "10.000000")
    assert any(line.startswith("peer implementation: class UID") for line in out.long_output)
    assert done.stderr == ""


def test_verbose_and_repeat(pacs: ThreadedEchoSCP) -> None:
    done = check("-H", "127.0.0.1", "-p", str(pacs.port), "-aec", "PACS", "--repeat", "3", "-v")
    assert done.returncode == 0, done.stdout
    out = parse_output(done.stdout)
    assert "3 C-ECHOs" in out.text
    assert any(line.startswith("timings: resolve") for line in out.long_output)
    assert any(line.startswith("negotiated: transfer syntax") for line in out.long_output)


@pytest.mark.parametrize(
    ("thresholds", "code", "state", "note"),
    [
        (["-w", "0.3", "-c", "20"], 1, "WARNING", "slower than -w 0.3"),
        (["-w", "0.1", "-c", "0.3"], 2, "CRITICAL", "slower than -c 0.3"),
        (["-w", "@0.3:20"], 1, "WARNING", "inside -w @0.3:20"),
    ],
)
def test_slow_peer_against_thresholds(
    scp_factory: ScpFactory, thresholds: list[str], code: int, state: str, note: str
) -> None:
    slow = scp_factory(faults=Faults(delay={"echo": 0.6}))  # at least 0.6 s: above 0.3
    done = check("-H", "127.0.0.1", "-p", str(slow.port), *thresholds)
    assert done.returncode == code, done.stdout
    out = parse_output(done.stdout)
    assert out.state == state
    assert out.text.endswith(note)
    assert float(str(out.perfdata["time"]["value"])) >= 0.6


def test_wrong_called_ae_is_critical(pacs: ThreadedEchoSCP) -> None:
    done = check("-H", "127.0.0.1", "-p", str(pacs.port), "-aec", "WRONG")
    assert done.returncode == 2, done.stdout
    out = parse_output(done.stdout)
    assert out.state == "CRITICAL"
    assert "association rejected" in out.text
    assert "called AE WRONG" in out.text
    assert out.long_output[0].startswith("A-ASSOCIATE-RJ: result 1, source 1, reason 7")


def test_refused_port_is_critical_with_check_tcp_wording() -> None:
    port = closed_port("127.0.0.1")
    done = check("-H", "127.0.0.1", "-p", str(port))
    assert done.returncode == 2, done.stdout
    out = parse_output(done.stdout)
    assert out.text == f"connect to address 127.0.0.1 and port {port}: Connection refused"


def test_refuse_state_like_check_tcp() -> None:
    port = closed_port("127.0.0.1")
    done = check("-H", "127.0.0.1", "-p", str(port), "--refuse", "warn")
    assert done.returncode == 1, done.stdout
    assert parse_output(done.stdout).state == "WARNING"


def test_silent_peer_ends_by_the_timeout(scp_factory: ScpFactory) -> None:
    silent = scp_factory(faults=Faults(silent_at="associate"))
    started = time.monotonic()
    done = check("-H", "127.0.0.1", "-p", str(silent.port), "-t", "2")
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout
    out = parse_output(done.stdout)
    assert out.text.startswith("Socket timeout after 2 seconds (no A-ASSOCIATE response from")
    assert out.perfdata["time"]["max"] == "2.000000"
    assert elapsed < 2 + SLACK


def test_failure_status_is_critical(scp_factory: ScpFactory) -> None:
    failing = scp_factory(faults=Faults(status=0x0110, error_comment="disk full"))
    done = check("-H", "127.0.0.1", "-p", str(failing.port))
    assert done.returncode == 2, done.stdout
    out = parse_output(done.stdout)
    assert out.text.startswith('C-ECHO status 0110H, Failure: Processing failure: "disk full"')


def test_release_timeout_is_warning_and_mappable(scp_factory: ScpFactory) -> None:
    mute = scp_factory(faults=Faults(no_release_response=True))
    args = ["-H", "127.0.0.1", "-p", str(mute.port), "--release-timeout", "0.5"]
    done = check(*args)
    assert done.returncode == 1, done.stdout
    assert "no A-RELEASE-RP within 0.5 seconds" in parse_output(done.stdout).text
    done = check(*args, "--ok-on", "release_timeout")
    assert done.returncode == 0, done.stdout


def test_ipv6_only_against_an_ipv4_literal(pacs: ThreadedEchoSCP) -> None:
    done = check("-6", "-H", "127.0.0.1", "-p", str(pacs.port))
    assert done.returncode == 2, done.stdout
    assert parse_output(done.stdout).text == "Invalid hostname, address or socket: 127.0.0.1"


# --- bad usage -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], "no peer"),
        (["-H", "127.0.0.1", "--bogus"], "unrecognized arguments: --bogus"),
        (["-H", "127.0.0.1", "-w", "abc"], "argument -w/--warning"),
        (["-H", "127.0.0.1", "-c", "10:5"], "starts after it ends"),
        (["-H", "127.0.0.1", "-p", "70000"], "port must be 1..65535"),
        (["-H", "127.0.0.1", "-t", "0"], "argument -t/--timeout"),
        (["-H", "127.0.0.1", "-t"], "expected one argument"),
        (["-H", "127.0.0.1", "--warn-on", "nonsense"], "unknown outcome"),
        (["-H", "127.0.0.1", "--ok-on", "timeout", "--crit-on", "timeout"], "both"),
        (["-H", "127.0.0.1", "-4", "-6"], "not allowed with"),
        (["-H", "127.0.0.1", "--targets", "x.txt"], "either -H HOST or --targets"),
        (["--targets", "/nonexistent/inventory.csv"], "cannot read"),
        (["-H", "127.0.0.1", "-aec", "A" * 17], "argument -aec/--call"),
        (["-H", "127.0.0.1", "+cf", "ca.pem"], "TLS options need"),
        (["-H", "127.0.0.1", "-D", "30,7"], "-D needs TLS"),
        (["-H", "127.0.0.1", "+tla", "-D", "x"], "not WARN[,CRIT] days"),
    ],
)
def test_bad_usage_is_unknown(args: list[str], reason: str) -> None:
    done = check(*args)
    assert done.returncode == 3, done.stdout + done.stderr
    first = done.stdout.partition("\n")[0]
    assert first.startswith("DICOM UNKNOWN - "), done.stdout
    assert reason in first
    assert "usage:" not in done.stdout + done.stderr  # never argparse's usage text


def test_help_and_version_exit_unknown_like_check_tcp() -> None:
    done = check("-h")
    assert done.returncode == 3
    assert done.stdout.startswith("usage: echoprobe check")
    assert "--format {nagios,checkmk,zabbix-lld,json}" in done.stdout
    done = check("-V")
    assert done.returncode == 3
    assert done.stdout.startswith("echoprobe check v")


# --- the check_dicom console script ----------------------------------------------------------


def _check_dicom() -> Path:
    if not CHECK_DICOM.exists():
        message = f"{CHECK_DICOM} is not installed (reinstall the project)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHECK_DICOM


def test_check_dicom_script(pacs: ThreadedEchoSCP) -> None:
    script = str(_check_dicom())
    done = run([script, "-H", "127.0.0.1", "-p", str(pacs.port), "-aec", "PACS"])
    assert done.returncode == 0, done.stdout
    assert parse_output(done.stdout).state == "OK"
    done = run([script, "--nonsense"])
    assert done.returncode == 3
    assert done.stdout.startswith("DICOM UNKNOWN - unrecognized arguments: --nonsense")
    done = run([script, "-h"])
    assert done.stdout.startswith("usage: check_dicom")


# --- a simulated fleet -----------------------------------------------------------------------

HEALTHY = [f"127.0.13.{n}" for n in range(1, 25)]
SILENT = ["127.0.13.31", "127.0.13.32"]
REJECTING = ["127.0.13.41", "127.0.13.42"]
FAILING = ["127.0.13.51"]
REFUSING = ["127.0.13.61", "127.0.13.62", "127.0.13.63"]


@pytest.fixture
def inventory(scp_factory: ScpFactory, tmp_path: Path) -> Path:
    faults: dict[str, Faults] = {host: Faults(silent_at="associate") for host in SILENT}
    faults.update({host: Faults(reject=(1, 1, 3)) for host in REJECTING})
    faults.update({host: Faults(status=0x0211) for host in FAILING})
    fleet = scp_factory(
        host=[*HEALTHY, *SILENT, *REJECTING, *FAILING],
        faults_by_address=faults,
        idle_timeout=10.0,
    )
    rows = ["name,host,port,called_ae"]
    rows += [f"peer-{host},{host},{fleet.port},PACS" for host in HEALTHY + SILENT]
    rows += [f"peer-{host},{host},{fleet.port}," for host in REJECTING + FAILING]
    rows += [f"peer-{host},{host},{closed_port(host)},PACS" for host in REFUSING]
    path = tmp_path / "fleet.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


TOTAL = len(HEALTHY + SILENT + REJECTING + FAILING + REFUSING)
BAD = len(SILENT + REJECTING + FAILING + REFUSING)


def test_fleet_summary(inventory: Path) -> None:
    started = time.monotonic()
    done = check("--targets", str(inventory), "-t", "8", "--peer-timeout", "1.5")
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    out = parse_output(done.stdout)
    assert out.text == f"{BAD} of {TOTAL} peers fail"
    assert len(out.long_output) == BAD
    assert all(line.startswith("CRITICAL: peer-127.0.13.") for line in out.long_output)
    assert sum("Connection refused" in line for line in out.long_output) == len(REFUSING)
    assert sum("Socket timeout after 1.5 seconds" in line for line in out.long_output) == 2
    counts = {k: out.perfdata[k]["value"] for k in ("peers", "ok", "critical", "failing")}
    assert counts == {
        "peers": str(TOTAL),
        "ok": str(len(HEALTHY)),
        "critical": str(BAD),
        "failing": str(BAD),
    }
    assert elapsed < 8 + SLACK


def test_fleet_bounded_by_the_timeout(inventory: Path) -> None:
    started = time.monotonic()
    done = check("--targets", str(inventory), "-t", "2")
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout
    out = parse_output(done.stdout)
    assert out.text == f"{BAD} of {TOTAL} peers fail"
    silent = [line for line in out.long_output if "seconds ran out" in line]
    assert len(silent) == len(SILENT)
    assert elapsed < 2 + SLACK


def test_fleet_failing_thresholds(inventory: Path) -> None:
    done = check(
        "--targets", str(inventory), "-t", "8", "--peer-timeout", "1",
        "--failing-warn", "0", "--failing-crit", "20",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    out = parse_output(done.stdout)
    assert out.state == "WARNING"
    assert out.perfdata["failing"]["warn"] == "0"
    assert out.perfdata["failing"]["crit"] == "20"


def test_fleet_checkmk(inventory: Path) -> None:
    done = check(
        "--targets", str(inventory), "-t", "8", "--peer-timeout", "1", "--format", "checkmk"
    )
    assert done.returncode == 0, done.stdout  # the states are in the lines
    lines = done.stdout.splitlines()
    assert len(lines) == TOTAL
    by_service = {line.split('"')[1]: line for line in lines}
    assert by_service[f"DICOM peer-{HEALTHY[0]}"].startswith('0 "DICOM peer-127.0.13.1" time=')
    assert by_service[f"DICOM peer-{REFUSING[0]}"].startswith("2 ")
    assert by_service[f"DICOM peer-{SILENT[0]}"].startswith("2 ")


def test_fleet_json(inventory: Path) -> None:
    done = check("--targets", str(inventory), "-t", "8", "--peer-timeout", "1", "--format", "json")
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    assert document["state"] == "CRITICAL"
    assert document["counts"]["peers"] == TOTAL
    by_name = {peer["name"]: peer for peer in document["peers"]}
    healthy = by_name[f"peer-{HEALTHY[0]}"]
    assert healthy["state"] == "OK"
    assert healthy["outcome"] == "success"
    assert healthy["time"] > 0
    assert by_name[f"peer-{FAILING[0]}"]["status"] == 0x0211
    assert by_name[f"peer-{REJECTING[0]}"]["outcome"] == "rejected_permanent"


def test_fleet_zabbix_lld_probes_nothing(inventory: Path) -> None:
    done = check("--targets", str(inventory), "--format", "zabbix-lld")
    assert done.returncode == 0, done.stdout
    data = json.loads(done.stdout)["data"]
    assert len(data) == TOTAL
    targets = {row["{#TARGET}"] for row in data}
    json_done = check(
        "--targets", str(inventory), "-t", "8", "--peer-timeout", "1", "--format", "json"
    )
    # The discovered {#TARGET} is the key the json format's peers carry.
    assert targets == {peer["target"] for peer in json.loads(json_done.stdout)["peers"]}


# --- TLS, IPv6, the watchdog -----------------------------------------------------------------


def test_tls_facts_in_the_long_output(scp_factory: ScpFactory) -> None:
    from echoprobe.net.tls import PeerVerification, TLSConfig
    from tests.support.tls_certs import shared_kit

    kit = shared_kit()
    server = TLSConfig(
        key_file=kit.server_key, cert_file=kit.server_cert, verify_peer=PeerVerification.IGNORE
    )
    scp = scp_factory(tls=server)
    done = check("-H", "127.0.0.1", "-p", str(scp.port), "+tla", "+cf", kit.ca)
    assert done.returncode == 0, done.stdout
    out = parse_output(done.stdout)
    assert "tls" in out.perfdata
    assert any(line.startswith("TLS: TLSv1.") for line in out.long_output), out.long_output
    # trustme's certificates are valid until 3000: -D 30,7 is satisfied.
    done = check("-H", "127.0.0.1", "-p", str(scp.port), "+tla", "+cf", kit.ca, "-D", "30,7")
    assert done.returncode == 0, done.stdout
    cert_days = parse_output(done.stdout).perfdata["cert_days"]
    assert (cert_days["warn"], cert_days["crit"]) == ("30:", "7:")
    assert float(str(cert_days["value"])) > 300 * 365
    # Without our CA the peer's certificate does not verify: CRITICAL.
    done = check("-H", "127.0.0.1", "-p", str(scp.port), "+tla")
    assert done.returncode == 2, done.stdout
    assert parse_output(done.stdout).state == "CRITICAL"


def test_unreadable_tls_key_is_unknown(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    done = check("-H", "127.0.0.1", "+tls", str(key), str(key))
    assert done.returncode == 3, done.stdout
    assert done.stdout.startswith("DICOM UNKNOWN - cannot set up TLS")


def test_ipv6_loopback(scp_factory: ScpFactory) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    scp = scp_factory(host="::1")
    done = check("-6", "-H", "::1", "-p", str(scp.port))
    assert done.returncode == 0, done.stdout
    assert "on ::1 port" in parse_output(done.stdout).text


def test_watchdog_line_when_nothing_was_reported() -> None:
    # The last resort when the event loop itself hangs: check_tcp's alarm line, CRITICAL.
    code = (
        "import time\n"
        "from echoprobe.cli.cmd_check import Reporter\n"
        "Reporter().watch(0.2, 7)\n"
        "time.sleep(20)\n"
    )
    done = run([sys.executable, "-c", code], timeout=15)
    assert done.returncode == 2
    assert done.stdout == "DICOM CRITICAL - Socket timeout after 7 seconds\n"


# --- the reference: check_tcp (monitoring-plugins-basic) -------------------------------------

CHECK_TCP = Path("/usr/lib/nagios/plugins/check_tcp")


def _check_tcp() -> str:
    if not CHECK_TCP.exists():
        message = f"{CHECK_TCP} is not installed (monitoring-plugins-basic)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return str(CHECK_TCP)


def test_refused_as_check_tcp_says_it() -> None:
    check_tcp = _check_tcp()
    port = str(closed_port("127.0.0.1"))
    theirs = run([check_tcp, "-H", "127.0.0.1", "-p", port])
    ours = check("-H", "127.0.0.1", "-p", port)
    assert theirs.returncode == ours.returncode == 2
    assert parse_output(ours.stdout).text == theirs.stdout.strip()


def test_timeout_as_check_tcp_says_it(scp_factory: ScpFactory) -> None:
    check_tcp = _check_tcp()
    silent = scp_factory(faults=Faults(silent_at="associate"))
    port = str(silent.port)
    # check_tcp waits for a string that never comes; we wait for an A-ASSOCIATE-AC.
    theirs = run([check_tcp, "-H", "127.0.0.1", "-p", port, "-e", "never", "-t", "1"])
    ours = check("-H", "127.0.0.1", "-p", port, "-t", "1")
    assert theirs.returncode == ours.returncode == 2
    state, _, wording = theirs.stdout.strip().partition(" - ")
    assert state == "CRITICAL"
    assert wording == "Socket timeout after 1 seconds"
    assert parse_output(ours.stdout).text.startswith(f"{wording} (no A-ASSOCIATE response")
