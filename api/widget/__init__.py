"""The website chat widget: its script, its public JSON and SSE routes under /widget/, and a demo page."""

from api.widget.routes import widget_handlers

__all__ = ["widget_handlers"]
