"""Dashboards: the KPI layout each staff member chooses for their executive dashboard."""
