"""Monitoring: the Prometheus exporter, the check plugin and the inventory helpers they read."""
