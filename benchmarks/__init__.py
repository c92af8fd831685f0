"""Side-by-side benchmarks of echoprobe, DCMTK `echoscu` and pynetdicom on loopback.

Run `uv run python -m benchmarks run [--quick]`; see `benchmarks/README.md` for the method.

Rules kept by every module here: network only on 127.0.0.0/8; every loop is bounded in count
and in time; every process started here stops by itself and is only ever stopped by its PID.
"""
