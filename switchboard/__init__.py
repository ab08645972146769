"""Settings, wiring and the command line: the one place that builds everything from configuration."""
