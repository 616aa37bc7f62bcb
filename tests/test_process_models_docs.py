"""The python blocks of docs/process-models.md, joined into one script, run as written and deliver every fill."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_process_models import Receiver

DOC = Path(__file__).resolve().parents[1] / "docs" / "process-models.md"


def test_pool_examples_deliver_every_fill(tmp_path: Path) -> None:
    """The page's script (fork pool, then spawn pool) runs; the OTLP receiver gets all 1,000 fills of each pool."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    script = tmp_path / "backtest.py"
    script.write_text("\n\n".join(blocks))
    receiver = Receiver()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=env, check=False
        )
        assert result.returncode == 0, result.stderr
        assert receiver.total("trading.orders.filled", symbol="BTC-USD") == 1000, result.stderr
        assert receiver.total("trading.orders.filled", symbol="ETH-USD") == 1000, result.stderr
    finally:
        receiver.close()
