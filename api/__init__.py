"""The HTTP edge: app factory, dashboard pages, JSON API, webhook routes (thin), and the provider sandbox."""
