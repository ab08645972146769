"""Charts: one spec, rendered to PNG for chat and email and to SVG for the dashboard."""
