"""Composition only: typed settings, the one typed Container, the command line and the background job table."""
