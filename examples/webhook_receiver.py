"""A FastAPI webhook receiver for trading signals, serving its own ``/metrics``.

``POST /webhook/{source}`` takes a JSON signal signed with HMAC-SHA256 in the
``X-Signature`` header, checks it (payload, signature, age, confidence) and
places an order on a simulated exchange. :class:`~tradetel.decorators.signal_handler`
counts signals received and rejected by reason, their processing time and
how many are in flight; :class:`~tradetel.decorators.order_placement` records
the orders. ``GET /metrics`` is tradetel's ASGI exposition app, added as a route of the
FastAPI app.

Run as a script, it serves on 127.0.0.1 (a free port) with uvicorn, sends
itself a seeded batch of signals, prints its signal metrics as scraped from
``/metrics`` and stops, within ``--duration`` seconds::

    python examples/webhook_receiver.py --signals 40 --seed 11
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

import tradetel
from tradetel.decorators import SignalRejected, order_placement, signal_handler
from tradetel.exporters.prometheus import asgi_app

SECRET = b"example-shared-secret"
MAX_AGE_S = 30.0
MIN_CONFIDENCE = 0.6
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def sign(body: bytes, secret: bytes = SECRET) -> str:
    """The signature a sender puts in ``X-Signature``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def create_app(telemetry: tradetel.Telemetry, *, clock: Callable[[], float] = time.time) -> ASGIApp:
    """The receiver: a FastAPI app for webhooks, with ``/metrics`` served by tradetel on one of its routes."""
    app = FastAPI(title="signal receiver")

    @order_placement(telemetry=telemetry, exchange="simex", reference_price="price")
    async def execute(symbol: str, side: str, amount: float, price: float) -> dict[str, Any]:
        await asyncio.sleep(0)
        average = price * (1.0002 if side == "buy" else 0.9998)
        return {
            "symbol": symbol,
            "side": side,
            "type": "market",
            "amount": amount,
            "filled": amount,
            "average": average,
        }

    @signal_handler(
        telemetry=telemetry,
        from_args={
            "source": "source",
            "symbol": "payload.symbol",
            "side": "payload.side",
            "signal_type": "payload.action",
        },
        reject_on={KeyError: "invalid_payload", ValueError: "invalid_payload"},
    )
    async def process(source: str, payload: dict[str, Any] | None, body: bytes, signature: str) -> dict[str, Any]:
        if not hmac.compare_digest(sign(body), signature):
            raise SignalRejected("invalid_signature")
        if not isinstance(payload, dict):
            raise SignalRejected("invalid_payload")
        if clock() - float(payload["timestamp"]) > MAX_AGE_S:
            raise SignalRejected("stale")
        if float(payload.get("confidence", 1.0)) < MIN_CONFIDENCE:
            raise SignalRejected("low_confidence")
        return await execute(payload["symbol"], payload["side"], float(payload["amount"]), float(payload["price"]))

    @app.post("/webhook/{source}")
    async def webhook(source: str, request: Request, x_signature: str = Header(default="")) -> JSONResponse:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        try:
            order = await process(source, payload, body, x_signature)
        except SignalRejected as rejected:
            return JSONResponse({"status": "rejected", "reason": rejected.reason}, status_code=422)
        except (KeyError, ValueError):
            return JSONResponse({"status": "rejected", "reason": "invalid_payload"}, status_code=422)
        return JSONResponse({"status": "accepted", "filled": order["filled"], "average": order["average"]})

    # tradetel's exposition app answers exactly /metrics (a mount would redirect it to /metrics/).
    app.add_route("/metrics", asgi_app(telemetry))
    return app


def signals(count: int, seed: int, now: float) -> list[tuple[bytes, str, str]]:
    """A seeded batch of (body, signature, expected verdict) with every kind of rejection mixed in."""
    rng = random.Random(seed)
    batch: list[tuple[bytes, str, str]] = []
    for index in range(count):
        payload = {
            "symbol": rng.choice(("BTC/USDT", "ETH/USDT")),
            "side": rng.choice(("buy", "sell")),
            "action": rng.choice(("entry", "exit")),
            "amount": 0.1,
            "price": 100.0,
            "confidence": 0.9,
            "timestamp": now,
        }
        verdict = ("accepted", "invalid_signature", "stale", "low_confidence", "invalid_payload")[index % 5]
        if verdict == "stale":
            payload["timestamp"] = now - 120
        elif verdict == "low_confidence":
            payload["confidence"] = rng.uniform(0.1, 0.5)
        elif verdict == "invalid_payload":
            del payload["symbol"]
        body = json.dumps(payload).encode()
        signature = sign(body, b"wrong-secret") if verdict == "invalid_signature" else sign(body)
        batch.append((body, signature, verdict))
    return batch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: ASGIApp, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL, stops on exit."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start in time")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


def send(base_url: str, batch: list[tuple[bytes, str, str]], *, deadline: float) -> list[int]:
    """POST each signal to ``/webhook/tradingview`` until ``deadline`` (monotonic); returns the status codes."""
    import httpx

    codes = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        for body, signature, _ in batch:
            if time.monotonic() > deadline:
                break
            response = client.post("/webhook/tradingview", content=body, headers={"X-Signature": signature})
            codes.append(response.status_code)
    return codes


def serve_and_send(count: int, seed: int, duration: float) -> str:
    """Serve on 127.0.0.1, send ``count`` signals, return the signal lines of ``/metrics`` (without buckets)."""
    import httpx

    deadline = time.monotonic() + duration
    with (
        tradetel.configure(service_name="signal-receiver", exporters="none", env={}) as telemetry,
        serving(create_app(telemetry)) as base_url,
    ):
        send(base_url, signals(count, seed, time.time()), deadline=deadline)
        exposition = httpx.get(f"{base_url}/metrics", timeout=5.0).text
    lines = exposition.splitlines()
    return "".join(f"{line}\n" for line in lines if line.startswith("trading_signals_") and "_bucket" not in line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--duration", type=float, default=20.0, help="upper bound on the run, in seconds")
    args = parser.parse_args(argv)
    print(serve_and_send(args.signals, args.seed, args.duration), end="")


if __name__ == "__main__":
    main()
