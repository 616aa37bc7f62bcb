"""OTLP exporter: sends tradetel's shared collection to an OpenTelemetry Collector.

gRPC or HTTP/protobuf, configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables (read in :mod:`tradetel.config`).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from ..config import OtlpSettings
from ..errors import ConfigurationError


def _sdk_exporter(settings: OtlpSettings) -> Any:
    endpoint = settings.resolved_endpoint
    headers = dict(settings.headers)
    try:
        if settings.protocol == "grpc":
            from grpc import Compression
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter

            compression = {"none": Compression.NoCompression, "gzip": Compression.Gzip, "deflate": Compression.Deflate}[
                settings.compression
            ]
            insecure = settings.insecure if settings.insecure is not None else endpoint.startswith("http://")
            credentials = None
            if settings.certificate:
                import grpc

                with open(settings.certificate, "rb") as pem:
                    credentials = grpc.ssl_channel_credentials(pem.read())
            return GrpcExporter(
                endpoint=endpoint,
                insecure=insecure,
                credentials=credentials,
                headers=headers,
                timeout=settings.timeout,
                compression=compression,
            )
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        http_compression = {
            "none": HttpCompression.NoCompression,
            "gzip": HttpCompression.Gzip,
            "deflate": HttpCompression.Deflate,
        }[settings.compression]
        return HttpExporter(
            endpoint=endpoint,
            certificate_file=settings.certificate or None,
            headers=headers,
            timeout=settings.timeout,
            compression=http_compression,
        )
    except ImportError:
        raise ConfigurationError(
            "OTEL_METRICS_EXPORTER", "otlp", "the otlp extra installed: pip install 'tradetel[otlp]'"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            "OTEL_EXPORTER_OTLP_CERTIFICATE", settings.certificate, f"a readable PEM file ({exc.strerror})"
        ) from None


class OtlpExporter:
    """Pushes each collection over OTLP; raises on failure so the push loop counts it."""

    name = "otlp"

    def __init__(self, settings: OtlpSettings) -> None:
        self.settings = settings
        self._exporter = _sdk_exporter(settings)

    def __repr__(self) -> str:
        return f"OtlpExporter(protocol={self.settings.protocol!r}, endpoint={self.settings.resolved_endpoint!r})"

    def export(self, data: MetricsData, timeout: float) -> None:
        result = self._exporter.export(data, timeout_millis=timeout * 1000)
        if result is not MetricExportResult.SUCCESS:
            raise ConnectionError(f"OTLP export to {self.settings.resolved_endpoint} failed")

    def shutdown(self, timeout: float) -> None:
        self._exporter.shutdown(timeout_millis=timeout * 1000)
