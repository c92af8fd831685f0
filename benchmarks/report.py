"""The markdown tables and the bars of issues 2 and 8, from the results JSON."""

# ruff: noqa: RUF001  (the tables print en dashes and multiplication signs)

from __future__ import annotations

from typing import Any

from benchmarks.common import JSON, fmt_num, fmt_ratio, ratio

SCP_BOUND_PCT = 90.0  # the SCP is the bottleneck when it is this busy


def _med(summary: JSON | None) -> float | None:
    return None if not summary else float(summary["median"])


def _spread(summary: JSON | None, digits: int = 0) -> str:
    if not summary:
        return "–"
    if summary["n"] == 1:
        return fmt_num(summary["median"], digits)
    return (
        f"{fmt_num(summary['median'], digits)} "
        f"({fmt_num(summary['min'], digits)}–{fmt_num(summary['max'], digits)})"
    )


def _iqr(summary: JSON | None) -> str:
    if not summary or summary["n"] < 2:
        return "–"
    return f"{fmt_num(summary['q1'])}–{fmt_num(summary['q3'])}"


def _scp(summary: JSON | None) -> str:
    med = _med(summary)
    if med is None:
        return "–"
    return f"{med:.0f} %" + (" **SCP-bound**" if med >= SCP_BOUND_PCT else "")


def _others(cell: JSON) -> str:
    """Median % of CPU 0 (client) / CPU 1 (SCP) used by other people's processes."""
    a, b = _med(cell.get("others_cpu0_pct")), _med(cell.get("others_cpu1_pct"))
    if a is None or b is None:
        return "–"
    return f"{a:.0f} / {b:.0f} %"


def _errors(cell: JSON) -> str:
    parts = [f"{k}: {v}" for k, v in sorted(cell.get("errors", {}).items())]
    parts += [f"failed run: {e}" for e in cell.get("failed_runs", [])]
    return "; ".join(parts) or "0"


def _rate(results: JSON, workload: str, key: str) -> float | None:
    cell = results.get(workload, {}).get("cells", {}).get(key)
    return None if cell is None else _med(cell.get("rate"))


def w1_table(w1: JSON) -> list[str]:
    cells: dict[str, JSON] = w1["cells"]
    lines = [
        "| client | concurrency | assoc/s median (min–max) | IQR | client CPU-µs/assoc "
        "| peak RSS MB | SCP CPU | others on CPU 0 / 1 | errors | echoprobe is × faster |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells.values():
        c = int(cell["spec"]["concurrency"])
        ours = _med(cells.get(f"echoprobe_c{c}", {}).get("rate"))
        rss = _spread(cell["rss_mb"]) if cell.get("rss_mb") else "– (processes)"
        lines.append(
            f"| {cell['label']} | {c} | {_spread(cell['rate'])} | {_iqr(cell['rate'])} "
            f"| {_spread(cell['cpu_us'])} | {rss} | {_scp(cell['scp_cpu_pct'])} "
            f"| {_others(cell)} | {_errors(cell)} | {fmt_ratio(ratio(ours, _med(cell['rate'])))} |"
        )
    for c in (1, 64):
        share = ratio(
            _med(cells.get(f"echoprobe_c{c}", {}).get("rate")),
            _med(cells.get(f"raw_c{c}", {}).get("rate")),
        )
        if share is not None:
            lines += [
                "",
                f"At concurrency {c} echoprobe reaches {share:.0%} of the raw-bytes limit.",
            ]
    return lines


def w2_table(w2: JSON) -> list[str]:
    cells: dict[str, JSON] = w2["cells"]
    ref = _med(cells.get("dcmtk_nodelay", {}).get("rate"))
    lines = [
        "| client | echoes/s median (min–max) | client CPU-µs/echo | SCP CPU "
        "| others on CPU 0 / 1 | errors | × DCMTK TCP_NODELAY=1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells.values():
        lines.append(
            f"| {cell['label']} | {_spread(cell['rate'])} | {_spread(cell['cpu_us'])} "
            f"| {_scp(cell['scp_cpu_pct'])} | {_others(cell)} | {_errors(cell)} "
            f"| {fmt_ratio(ratio(_med(cell['rate']), ref))} |"
        )
    return lines


def _outcomes(runs: list[JSON]) -> str:
    if not runs:
        return "–"
    last = runs[-1] or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(last.items()))


def w3_table(w3: JSON) -> list[str]:
    n = w3["peers"]
    lines = [
        f"| client | peers swept | wall s median (min–max) | wall s for {n:,} peers "
        f"| client CPU s for {n:,} | peak RSS MB | outcomes (last run) | misclassified | SCP CPU "
        "| others on CPU 0 / 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in w3["cells"].values():
        label = cell["label"] + (f" ({cell['via']})" if cell.get("via") else "")
        at_n = _spread(cell["wall_s_at_n"], 1)
        cpu_n = _spread(cell["cpu_s_at_n"], 2)
        if cell["extrapolated"]:
            at_n, cpu_n = f"≈ {at_n} *extrapolated ×{cell['scale']:g}*", f"≈ {cpu_n} *extrap.*"
        rss = _spread(cell["rss_mb"]) if cell.get("rss_mb") else "– (processes)"
        mism = ", ".join(str(m) for m in cell["mismatched"]) or "–"
        fails = "; ".join(str(e) for e in cell["failed_runs"])
        lines.append(
            f"| {label} | {cell['peers_measured']:,} | {_spread(cell['wall_s'], 2)} | {at_n} "
            f"| {cpu_n} | {rss} | {_outcomes(cell['outcomes'])}{' ' + fails if fails else ''} "
            f"| {mism} | {_scp(cell['scp_cpu_pct'])} | {_others(cell)} |"
        )
    return lines


def w4_table(w4: JSON) -> list[str]:
    cells: dict[str, JSON] = w4["cells"]
    ref = _med(cells.get("c64", {}).get("rate"))
    lines = [
        "| concurrency | assoc/s median (min–max) | IQR | client CPU-µs/assoc | peak RSS MB "
        "| SCP CPU | others on CPU 0 / 1 | errors | × rate at 64 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells.values():
        c = cell["spec"]["concurrency"]
        lines.append(
            f"| {c} | {_spread(cell['rate'])} | {_iqr(cell['rate'])} | {_spread(cell['cpu_us'])} "
            f"| {_spread(cell['rss_mb'])} | {_scp(cell['scp_cpu_pct'])} | {_others(cell)} "
            f"| {_errors(cell)} "
            f"| {fmt_ratio(ratio(_med(cell['rate']), ref))} |"
        )
    return lines


def w5_table(w5: JSON) -> list[str]:
    if w5.get("error"):
        return [f"W5 failed: {w5['error']}"]
    variants: dict[str, JSON] = w5["variants"]
    ours = _med(variants.get("ours", {}).get("wall_ms"))
    lines = [
        "| echoscu, one echo | wall ms median (min–max) | IQR | CPU ms median (min–max) "
        "| failures | wall ÷ ours |",
        "|---|---|---|---|---|---|",
    ]
    if w5.get("ours_unavailable"):
        lines.append(f"| echoprobe `echoscu` | not available: {w5['ours_unavailable']} | | | | |")
    noise = w5.get("others_cpu_pct")
    for v in variants.values():
        lines.append(
            f"| {v['label']} | {_spread(v['wall_ms'], 1)} | {_iqr(v['wall_ms'])} "
            f"| {_spread(v['cpu_ms'], 1)} | {v['failures']} "
            f"| {fmt_ratio(ratio(_med(v['wall_ms']), ours))} |"
        )
    if noise:
        lines += ["", f"Others on CPU 0 / 1 over W5: {noise[0]:.0f} / {noise[1]:.0f} %."]
    return lines


# -- bars


def _bar(name: str, figure: str, met: bool | None) -> JSON:
    return {
        "bar": name,
        "figure": figure,
        "met": met,
    }


def bars(results: JSON) -> list[JSON]:
    out: list[JSON] = []
    usable = {k: v for k, v in results.items() if isinstance(v, dict) and "cells" in v}
    w1 = usable.get("W1")
    if w1:
        ours = _rate(results, "W1", "echoprobe_c64")
        pyn = [_rate(results, "W1", f"pynetdicom_c{c}") for c in (1, 64)]
        dcm = [_rate(results, "W1", k) for k in ("dcmtk_c64", "dcmtk_nodelay_c64")]
        pyn_best = max((v for v in pyn if v), default=None)
        dcm_best = max((v for v in dcm if v), default=None)
        r = ratio(ours, pyn_best)
        out.append(
            _bar(
                "#8 W1: c=64 ≥ 30× pynetdicom's best",
                f"{fmt_num(ours)} vs {fmt_num(pyn_best)} assoc/s = {fmt_ratio(r)}",
                None if r is None else r >= 30,
            )
        )
        r = ratio(ours, dcm_best)
        out.append(
            _bar(
                "#8 W1: c=64 ≥ 200× DCMTK echoscu processes (best of Nagle/TCP_NODELAY)",
                f"{fmt_num(ours)} vs {fmt_num(dcm_best)} assoc/s = {fmt_ratio(r)}",
                None if r is None else r >= 200,
            )
        )
        cpu = _med(w1["cells"].get("echoprobe_c64", {}).get("cpu_us"))
        out.append(
            _bar(
                "#8 W1: client CPU ≤ 120 µs per association (c=64)",
                f"{fmt_num(cpu)} µs",
                None if cpu is None else cpu <= 120,
            )
        )
        out.append(
            _bar(
                "#2: ≥ 5,000 assoc/s at concurrency 64",
                f"{fmt_num(ours)} assoc/s",
                None if ours is None else ours >= 5000,
            )
        )
    if usable.get("W2"):
        ours = _rate(results, "W2", "echoprobe")
        ref = _rate(results, "W2", "dcmtk_nodelay")
        out.append(
            _bar(
                "#8 W2: echoes/s ≥ DCMTK echoscu with TCP_NODELAY=1",
                f"{fmt_num(ours)} vs {fmt_num(ref)} echoes/s = {fmt_ratio(ratio(ours, ref))}",
                None if ours is None or ref is None else ours >= ref,
            )
        )
    w3 = usable.get("W3")
    if w3:
        cell = w3["cells"].get("echoprobe", {})
        wall, rss = _med(cell.get("wall_s")), _med(cell.get("rss_mb"))
        limit = w3["timeout_s"] + 2
        n = w3["peers"]
        out.append(
            _bar(
                f"#8 W3: {n:,} peers within timeout + 2 s = {limit:g} s",
                f"{fmt_num(wall, 2)} s",
                None if wall is None else wall <= limit,
            )
        )
        out.append(
            _bar(
                f"#8 W3: sweep RSS ≤ 200 MB ({n:,} peers)",
                f"{fmt_num(rss)} MB",
                None if rss is None else rss <= 200,
            )
        )
    w4 = usable.get("W4")
    if w4:
        top = max(int(c) for c in w4["levels"])
        hi, ref = _rate(results, "W4", f"c{top}"), _rate(results, "W4", "c64")
        r = ratio(hi, ref)
        out.append(
            _bar(
                f"#8 W4: rate at {top} ≥ 70 % of rate at 64",
                f"{fmt_num(hi)} vs {fmt_num(ref)} assoc/s = {r:.0%}" if r else "–",
                None if r is None else r >= 0.7,
            )
        )
        rss = _med(w4["cells"].get(f"c{top}", {}).get("rss_mb"))
        out.append(
            _bar(
                f"#8 W4: RSS at {top} ≤ 150 MB",
                f"{fmt_num(rss)} MB",
                None if rss is None else rss <= 150,
            )
        )
    w5 = results.get("W5")
    if w5:
        v = w5.get("variants", {})
        ours = _med(v.get("ours", {}).get("wall_ms"))
        ref = _med(v.get("dcmtk", {}).get("wall_ms"))
        nd = _med(v.get("dcmtk_nodelay", {}).get("wall_ms"))
        figure = (
            f"not available ({w5.get('ours_unavailable') or w5.get('error')})"
            if ours is None
            else f"{fmt_num(ours, 1)} ms vs {fmt_num(ref, 1)} ms "
            f"(DCMTK with TCP_NODELAY=1: {fmt_num(nd, 1)} ms)"
        )
        out.append(
            _bar(
                "#8 W5: our echoscu single echo wall ≤ DCMTK's",
                figure,
                None if ours is None or ref is None else ours <= ref,
            )
        )
    return out


def bars_table(items: list[JSON]) -> list[str]:
    lines = ["| bar | figure | met |", "|---|---|---|"]
    for item in items:
        met = {True: "yes", False: "**MISSED**", None: "not measured"}[item["met"]]
        lines.append(f"| {item['bar']} | {item['figure']} | {met} |")
    return lines


def markdown(results: JSON) -> str:
    meta: dict[str, Any] = results["meta"]
    out = [
        f"## Results: {meta['date']} ({'quick smoke' if meta['quick'] else 'full run'})",
        "",
        f"Machine: {meta['nproc']} CPUs, {meta['cpu_model']}, Linux {meta['kernel']}; "
        f"Python {meta['python']}; DCMTK {meta['dcmtk']}; pynetdicom {meta['pynetdicom']}; "
        f"uvloop {meta['uvloop']}. Load average (1/5/15 min) at start "
        f"{meta['load_start']}, at end {meta['load_end']}; CPUs busy over the second before "
        f"the run {meta.get('busy_start')} %, after it {meta.get('busy_end')} %. "
        f"Client on CPU 0, SCP (echoprobe "
        f"`EchoSCP` on uvloop, its own process) on CPU 1. Wall time {meta['wall_s']:.0f} s.",
        "",
    ]
    sections = (
        ("W1", "W1: associations/s, one C-ECHO each", w1_table),
        ("W2", "W2: C-ECHOs/s inside one association", w2_table),
        ("W3", "W3: fleet sweep (5 % refuse, 5 % silent)", w3_table),
        ("W4", "W4: echoprobe scaling with concurrency", w4_table),
        ("W5", "W5: `echoscu` start-up, one echo per process", w5_table),
    )
    for key, title, table in sections:
        if key not in results:
            continue
        if "error" in results[key] and "cells" not in results[key] and key != "W5":
            out += [f"### {title}", "", f"Failed: {results[key]['error']}", ""]
            continue
        out += [f"### {title}", "", *table(results[key]), ""]
    out += ["### Bars (issues 2 and 8)", "", *bars_table(results["bars"]), ""]
    return "\n".join(out)
