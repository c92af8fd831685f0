"""echoprobe: high-concurrency DICOM Verification (C-ECHO) prober."""

__version__ = "0.1.0"
