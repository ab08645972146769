"""Analytics: metric registry, query layer, trends and insights, chart specs and rendering, report schedules."""
