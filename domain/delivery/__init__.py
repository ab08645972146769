"""Delivery: the outbox rules and the ports provider drivers implement."""
