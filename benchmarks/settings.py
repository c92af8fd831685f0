"""How long and how often each workload runs: `--quick` (CI smoke, ≤ 60 s) or full (≤ 10 min)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    # W1: associations/s, one echo each
    w1_reps: int
    w1_seconds: float
    # W2: echoes/s in one association (K per variant)
    w2_reps: int
    w2_repeat_fast: int  # echoprobe and DCMTK with TCP_NODELAY=1
    w2_repeat_nagle: int  # DCMTK default: ~44 ms per echo (Nagle + delayed ACK)
    w2_repeat_pynetdicom: int
    # W3: fleet sweep
    w3_peers: int
    w3_subset: int  # DCMTK and pynetdicom sweep this prefix, extrapolated to w3_peers
    w3_reps: int
    w3_concurrency: int  # echoprobe
    w3_subset_concurrency: int  # DCMTK processes / pynetdicom threads
    w3_timeout: float
    # W4: scaling
    w4_levels: tuple[int, ...]
    w4_reps: int
    w4_seconds: float
    # W5: start-up
    w5_reps: int
    # SCP layout: addresses times ports listeners
    scp_addresses: int = 8
    scp_ports: int = 4


QUICK = Settings(
    quick=True,
    w1_reps=1,
    w1_seconds=0.6,
    w2_reps=1,
    w2_repeat_fast=2000,
    w2_repeat_nagle=10,
    w2_repeat_pynetdicom=100,
    w3_peers=1000,
    w3_subset=100,
    w3_reps=1,
    w3_concurrency=1024,
    w3_subset_concurrency=64,
    w3_timeout=2.0,
    w4_levels=(1, 16, 64, 256, 2048, 8192),
    w4_reps=1,
    w4_seconds=1.0,
    w5_reps=5,
)

FULL = Settings(
    quick=False,
    w1_reps=4,
    w1_seconds=2.5,
    w2_reps=3,
    w2_repeat_fast=30000,
    w2_repeat_nagle=60,
    w2_repeat_pynetdicom=1000,
    w3_peers=10000,
    w3_subset=400,
    w3_reps=3,
    w3_concurrency=512,
    w3_subset_concurrency=64,
    w3_timeout=2.0,
    w4_levels=(1, 16, 64, 256, 2048, 8192),
    w4_reps=3,
    w4_seconds=3.0,
    w5_reps=30,
)
