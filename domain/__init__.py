"""The business: entities, rules, use-cases and the ports they need. Imports no framework or I/O library."""
