"""OTLP exporter: sends tradetel's shared collection to an OpenTelemetry Collector.

gRPC or HTTP/protobuf, configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables (read in :mod:`tradetel.config`); timeouts, retries with
back-off and compression are the OpenTelemetry SDK exporter's. The shared
collection is cumulative; :class:`TemporalityConverter` turns it into what
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks for, as the
OpenTelemetry specification defines the three preferences:

=============  =====================================  ======================================
preference     delta                                  cumulative
=============  =====================================  ======================================
cumulative     (nothing)                              everything
delta          counters, observable counters,         up-down counters (both kinds)
               histograms
lowmemory      counters, histograms                   observable counters, up-down counters
=============  =====================================  ======================================

Gauges have no temporality and are sent as they are.

A failed export does not move the delta baseline: the next delta covers
everything since the last export that arrived, so a collector that was down
still gets every increment once it is back (see ``docs/reliability.md``).

Example::

    tel = tradetel.configure(exporters="otlp", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

from .._exemplars import collected_at, sent_once
from .._pipeline import DeltaTracker, ExportFailure, SharedReader, connection_refused
from ..config import TEMPORALITIES, OtlpSettings, header_problem
from ..errors import ConfigurationError

__all__ = ["OtlpExporter", "TemporalityConverter", "failure_reason"]


def _read_pem(path: str | None, setting: str) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as pem:
            return pem.read()
    except OSError as exc:
        raise ConfigurationError(setting, path, f"a readable PEM file ({exc.strerror})") from None


def _shown(url: str) -> str:
    """``url`` for logs and reprs: a user and password in it (``https://user:pass@host``) are redacted."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="<redacted>@" + parts.netloc.rpartition("@")[2]).geturl()


def _grpc_insecure(settings: OtlpSettings) -> bool:
    """Whether gRPC goes without TLS, as the SDK decides: ``https`` never; else the setting; else ``http``."""
    scheme = urlsplit(settings.resolved_endpoint).scheme
    if scheme == "https":
        return False
    if settings.insecure is not None:
        return settings.insecure
    return scheme == "http"


def _sdk_exporter(settings: OtlpSettings) -> tuple[Any, Callable[[], object]]:
    """The SDK's exporter, and a function returning the collector's last answer.

    Every value is passed explicitly, so that the exporter does not read ``os.environ`` itself, which
    may differ from the environment tradetel was given. (One exception: the SDK's HTTP exporter adds the
    headers of ``OTEL_EXPORTER_OTLP_[METRICS_]HEADERS`` in ``os.environ`` to the ones it is given.)
    """
    endpoint = settings.resolved_endpoint
    headers = {key.lower(): value for key, value in settings.headers.items()}  # OtlpSettings may be built by hand
    problem = header_problem(headers, settings.protocol)
    if problem is not None:
        raise ConfigurationError(
            "otlp_headers", headers, f"headers {settings.protocol} can send; {problem}", secret=True
        )
    try:
        if settings.protocol == "grpc":
            import grpc

            compression = {
                "none": grpc.Compression.NoCompression,
                "gzip": grpc.Compression.Gzip,
                "deflate": grpc.Compression.Deflate,
            }[settings.compression]
            insecure = _grpc_insecure(settings)
            credentials = None
            if not insecure:
                credentials = grpc.ssl_channel_credentials(
                    _read_pem(settings.certificate, "OTEL_EXPORTER_OTLP_CERTIFICATE"),
                    _read_pem(settings.client_key, "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
                    _read_pem(settings.client_certificate, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
                )
            exporter = _grpc_exporter_class()(
                endpoint=endpoint,
                insecure=insecure,
                credentials=credentials,
                headers=headers,
                timeout=settings.timeout,
                compression=compression,
            )
            exporter._headers = tuple(headers.items())  # given no headers, the SDK would read os.environ's
            return exporter, lambda: exporter.recorder.code
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter

        http_compression = {
            "none": HttpCompression.NoCompression,
            "gzip": HttpCompression.Gzip,
            "deflate": HttpCompression.Deflate,
        }[settings.compression]
        for path, setting in (
            (settings.certificate, "OTEL_EXPORTER_OTLP_CERTIFICATE"),
            (settings.client_key, "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
            (settings.client_certificate, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        ):
            _read_pem(path, setting)  # a missing file is a configuration error now, not a failed export later
        session = _recording_session(settings.certificate)
        http_exporter = HttpExporter(
            endpoint=endpoint,
            certificate_file=settings.certificate or None,
            client_key_file=settings.client_key or None,
            client_certificate_file=settings.client_certificate or None,
            headers=headers,
            timeout=settings.timeout,
            compression=http_compression,
            session=session,
        )
        return http_exporter, lambda: session.last_status
    except ImportError:
        raise ConfigurationError(
            "OTEL_METRICS_EXPORTER", "otlp", "the otlp extra installed: pip install 'tradetel[otlp]'"
        ) from None


def _recording_session(certificate: str | None) -> Any:
    """A requests session that remembers the status of its last response (the reason of a failed export).

    With ``certificate``, it also verifies with it even when ``REQUESTS_CA_BUNDLE`` is set: requests
    lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify`` (psf/requests#3829),
    so ``OTEL_EXPORTER_OTLP_CERTIFICATE`` would silently give way to the system bundle, and a collector
    with a private CA would be refused.
    """
    import requests

    class Session(requests.Session):
        last_status: int | None = None

        def send(self, request: Any, **kwargs: Any) -> Any:
            self.last_status = None
            response = super().send(request, **kwargs)
            self.last_status = response.status_code
            return response

        def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if certificate and verify is None:
                merged["verify"] = self.verify
            return merged

    session = Session()
    if certificate:
        session.verify = certificate
    return session


_GRPC_EXPORTER: list[type] = []


def _grpc_exporter_class() -> type:
    """The SDK's gRPC exporter, with an interceptor on its channel that remembers the last status code."""
    if _GRPC_EXPORTER:
        return _GRPC_EXPORTER[0]
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub

    class StatusRecorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        code: Any = None

        def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
            self.code = None
            outcome = continuation(client_call_details, request)
            self.code = outcome.code()
            return outcome

    class Exporter(OTLPMetricExporter):
        recorder: StatusRecorder

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not hasattr(self, "recorder"):
                # Older exporters build their channel in __init__, without the hook, and keep only the stub.
                self.recorder = StatusRecorder()
                self._client = _RecordingStub(self._client, self.recorder)  # type: ignore[assignment]

        def _initialize_channel_and_stub(self) -> None:
            # the SDK builds (and, after UNAVAILABLE, rebuilds) its channel here
            super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
            self._intercept()

        def _intercept(self) -> None:
            if not hasattr(self, "recorder"):
                self.recorder = StatusRecorder()
            self._channel = grpc.intercept_channel(self._channel, self.recorder)
            self._client = MetricsServiceStub(self._channel)  # type: ignore[no-untyped-call,assignment]

    class _RecordingStub:
        """A metrics service stub that remembers the status code of its last Export call."""

        def __init__(self, stub: Any, recorder: StatusRecorder) -> None:
            self._stub = stub
            self._recorder = recorder

        def Export(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the gRPC method name
            self._recorder.code = None
            try:
                answer = self._stub.Export(*args, **kwargs)
            except grpc.RpcError as error:
                self._recorder.code = error.code()
                raise
            self._recorder.code = grpc.StatusCode.OK
            return answer

    _GRPC_EXPORTER.append(Exporter)
    return Exporter


_HTTP_REASONS = {400: "bad_request", 401: "unauthenticated", 403: "unauthenticated", 413: "bad_request"}
_HTTP_CONFIGURATION = frozenset({404, 405, 415})
_GRPC_REASONS = {
    "UNAUTHENTICATED": "unauthenticated",
    "PERMISSION_DENIED": "unauthenticated",
    "INVALID_ARGUMENT": "bad_request",
    "UNIMPLEMENTED": "configuration",
}


def failure_reason(status: object) -> str:
    """The ``reason`` of a failed export from the last status the collector answered (None: no answer).

    ``unauthenticated`` (401/403, UNAUTHENTICATED/PERMISSION_DENIED: the headers), ``bad_request`` (400/413,
    INVALID_ARGUMENT), ``configuration`` (404/405/415, UNIMPLEMENTED: the endpoint, its path or the
    protocol is wrong) and ``unavailable`` for everything else, which retrying may cure.
    """
    if isinstance(status, int) and not isinstance(status, bool):
        if status in _HTTP_CONFIGURATION:
            return "configuration"
        return _HTTP_REASONS.get(status, "unavailable")
    name = getattr(status, "name", None)
    return _GRPC_REASONS.get(name, "unavailable") if isinstance(name, str) else "unavailable"


class TemporalityConverter:
    """Converts cumulative collections to a temporality preference: ``cumulative``, ``delta`` or ``lowmemory``.

    Each converter keeps the previous cumulative value of every series, so
    use one per destination. Unchanged delta series are left out, as the SDK
    leaves out delta points of intervals without measurements.

    Example::

        converter = TemporalityConverter("delta")
        exporter.export(converter.convert(tel.collect()))
    """

    def __init__(self, preference: str, observable_counters: Callable[[], frozenset[str]] = frozenset) -> None:
        if preference not in TEMPORALITIES:
            raise ConfigurationError(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference, "cumulative, delta or lowmemory"
            )
        self.preference = preference
        self._observable_counters = observable_counters
        self._tracker = DeltaTracker()

    def convert(self, data: MetricsData, *, pending: bool = False) -> MetricsData:
        """The collection in the preferred temporality (``data`` itself for ``cumulative``).

        With ``pending=True`` the deltas become the baseline only at :meth:`commit`; :meth:`discard`
        (the export failed) keeps the old baseline, so the next deltas include these.
        """
        if self.preference == "cumulative":
            return data
        cumulative_counters = self._observable_counters() if self.preference == "lowmemory" else frozenset()
        resources = []
        for resource_metrics in data.resource_metrics:
            scopes = []
            for scope_metrics in resource_metrics.scope_metrics:
                prefix = scope_metrics.scope.name + "\x00"
                metrics = [self._metric(prefix, metric, cumulative_counters) for metric in scope_metrics.metrics]
                kept = [metric for metric in metrics if metric is not None]
                if kept:
                    scopes.append(ScopeMetrics(scope_metrics.scope, kept, scope_metrics.schema_url))
            if scopes:
                resources.append(ResourceMetrics(resource_metrics.resource, scopes, resource_metrics.schema_url))
        if not pending:
            self._tracker.advance()
        return MetricsData(resource_metrics=resources)

    def commit(self) -> None:
        """The pending conversion arrived: its points are the baseline of the next deltas."""
        self._tracker.advance()

    def discard(self) -> None:
        """The pending conversion was not delivered: the next deltas start from the old baseline."""
        self._tracker.discard()

    def reset(self) -> None:
        """Forget every baseline (a forked child: its series start from zero)."""
        self._tracker = DeltaTracker()

    def _metric(self, prefix: str, metric: Metric, cumulative_counters: frozenset[str]) -> Metric | None:
        data = metric.data
        key = prefix + metric.name
        if isinstance(data, Sum) and data.is_monotonic and metric.name not in cumulative_counters:
            sums = [self._tracker.sum(key, p) for p in data.data_points if isinstance(p, NumberDataPoint)]
            points: list[Any] = [p for p in sums if p is not None]
            new_data: Any = Sum(points, AggregationTemporality.DELTA, is_monotonic=True)
        elif isinstance(data, Histogram):
            deltas = [self._tracker.histogram(key, p) for p in data.data_points if isinstance(p, HistogramDataPoint)]
            points = [p for p in deltas if p is not None]
            new_data = Histogram(points, AggregationTemporality.DELTA)
        else:
            return metric
        if not points:
            return None
        return Metric(metric.name, metric.description, metric.unit, new_data)


class OtlpExporter:
    """Pushes each collection over OTLP in the configured temporality; raises on failure so the push loop counts it.

    Example::

        exporter = OtlpExporter(OtlpSettings(protocol="http/protobuf", endpoint="http://127.0.0.1:4318/v1/metrics"))
    """

    failure_reasons = ("unavailable", "unauthenticated", "bad_request", "configuration")
    """Every ``reason`` :func:`failure_reason` gives, created at 0 in ``tradetel.export.failures`` at start-up."""

    name = "otlp"

    def __init__(self, settings: OtlpSettings, *, sdk_exporter: Any = None) -> None:
        self.settings = settings
        self._reader: SharedReader | None = None
        self._converter = TemporalityConverter(settings.temporality, self._observable_counters)
        self._own_exporter = sdk_exporter is None
        self._last_status: Callable[[], object] = lambda: None
        self._exemplars_sent = 0  # collection time of the last export that arrived
        if sdk_exporter is not None:
            self._exporter = sdk_exporter
        else:
            self._exporter, self._last_status = _sdk_exporter(settings)

    def __repr__(self) -> str:
        return (
            f"OtlpExporter(protocol={self.settings.protocol!r}, endpoint={_shown(self.settings.resolved_endpoint)!r}, "
            f"temporality={self.settings.temporality!r})"
        )

    def bind_reader(self, reader: SharedReader) -> None:
        """Called by the push loop: the reader tells which counters are asynchronous."""
        self._reader = reader

    def use_temporality(self, preference: str) -> None:
        """Send ``preference`` from now on (a worker of a pre-fork server: ``delta``); no baseline is kept."""
        self._converter = TemporalityConverter(preference, self._observable_counters)
        self.settings = replace(self.settings, temporality=preference)

    def _observable_counters(self) -> frozenset[str]:
        return self._reader.observable_counter_names() if self._reader is not None else frozenset()

    def export(self, data: MetricsData, timeout: float) -> None:
        converter = self._converter
        converted = converter.convert(data, pending=True)
        if not converted.resource_metrics:
            converter.commit()
            return
        if self._exemplars_sent:  # cumulative points: each exemplar once (delta points carry their interval's)
            converted = sent_once(converted, self._exemplars_sent)
        try:
            result = self._exporter.export(converted, timeout_millis=timeout * 1000)
        except BaseException:
            converter.discard()
            raise
        if result is not MetricExportResult.SUCCESS:
            converter.discard()
            status = self._last_status()
            reason = failure_reason(status)
            answer = f" (the collector answered {getattr(status, 'name', status)})" if status is not None else ""
            raise ExportFailure(
                [reason],
                f"OTLP export to {_shown(self.settings.resolved_endpoint)} failed{answer}, reason {reason} "
                "(after the SDK's retries)",
            )
        converter.commit()
        self._exemplars_sent = collected_at(data)

    def refused(self, timeout: float) -> bool:
        """Whether the collector refuses connections now (the push loop then skips the final flush)."""
        default_port = 4317 if self.settings.protocol == "grpc" else 4318
        return self._own_exporter and connection_refused(self.settings.resolved_endpoint, default_port, timeout)

    def shutdown(self, timeout: float) -> None:
        self._exporter.shutdown(timeout_millis=timeout * 1000)

    def after_fork_in_child(self) -> None:
        """In a forked child: a new connection (the parent's gRPC channel or HTTP pool is not shareable), no baseline.

        The inherited SDK exporter is kept referenced and never closed: closing it here could
        tear down the connection the parent still uses.
        """
        self._converter.reset()
        self._exemplars_sent = 0
        if self._own_exporter:
            _INHERITED.append(self._exporter)
            self._exporter, self._last_status = _sdk_exporter(self.settings)


_INHERITED: list[Any] = []
"""SDK exporters a forked child inherited: kept alive so that garbage collection never closes them there."""
