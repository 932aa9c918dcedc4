"""The HTTP surface: health, metrics, the REST API, webhook receivers, later the dashboard."""
