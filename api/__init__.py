"""The HTTP edge: app factory, dashboard pages, JSON API, webhooks, provider sandbox."""
