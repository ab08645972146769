"""Analytics persistence: fact-table definitions, KPI fact queries and the rollup SQL."""
