"""Backends: Prometheus (pull), OTLP to a collector and DogStatsD (push)."""

__all__: list[str] = []
