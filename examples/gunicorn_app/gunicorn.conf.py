"""gunicorn configuration: tradetel's worker hooks, 4 workers, each replaced after about 1,000 requests.

Run from this folder, with an OpenTelemetry Collector agent listening on 127.0.0.1:4318 (collector/agent.yaml)::

    OTEL_METRICS_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_SERVICE_NAME=platform-api \\
        gunicorn -c gunicorn.conf.py wsgi_app:app
    # or the FastAPI app on uvicorn workers:
    ... gunicorn -c gunicorn.conf.py -k uvicorn_worker.UvicornWorker asgi_app:app

Each worker pushes OTLP deltas under ``service.instance.id`` ``<host>-<master pid>-w<index>``; the agent adds
them up and serves one ``/metrics`` (127.0.0.1:8889) with the service-wide totals.
"""

# gunicorn looks its server hooks up by name in this module.
from tradetel.gunicorn import post_fork, post_worker_init, pre_fork, worker_exit  # noqa: F401

bind = "127.0.0.1:8000"
workers = 4
max_requests = 1000
max_requests_jitter = 100
graceful_timeout = 20
