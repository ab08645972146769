"""Analytics: metric registry, query layer, trends, chart specs and rendering, schedules."""
