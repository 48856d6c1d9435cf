"""Portfolio figures for the dashboard: KPIs, distributions, trends and regional breakdown."""
