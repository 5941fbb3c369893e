"""Operating the daemons: management API and Prometheus metrics."""
