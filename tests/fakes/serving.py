"""The test servers' common life cycle: serve in a thread, print the ready line, stop cleanly on a signal."""

from __future__ import annotations

import logging
import signal
import socketserver
import threading
from collections.abc import Callable
from types import FrameType


def serve_until_signalled(server: socketserver.BaseServer, url: str, *, name: str,
                          on_ready: Callable[[], None] | None = None,
                          before_shutdown: Callable[[], None] | None = None) -> None:
    """Serve ``server`` until SIGTERM or SIGINT; print ``listening on URL`` once it accepts connections."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True).start()
    print(f"listening on {url}", flush=True)
    if on_ready is not None:
        on_ready()
    stop.wait()
    logging.info("shutting down")
    if before_shutdown is not None:
        before_shutdown()
    server.shutdown()
    server.server_close()
