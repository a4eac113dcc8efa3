"""How the standalone cluster's start-up reads its master: Spark's UI listens before its pages are attached, so the
master's HTML page can answer `/json/` for a moment; that is "not up yet", not a failed start (seen on a loaded CI
machine, where it failed the cluster test's set-up)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from lake.standalone import StandaloneCluster

HTML = b"<!DOCTYPE html><html><head><title>Spark Master</title></head><body></body></html>"
STATUS = {"workers": [{"state": "ALIVE"}, {"state": "DEAD"}, {"state": "ALIVE"}]}


@pytest.fixture
def master_ui() -> Iterator[tuple[list[bytes], int]]:
    """A stand-in for the master's UI on 127.0.0.1 that answers each GET with the next of its queued bodies."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = bodies.pop(0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bodies, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_master_s_html_page_answering_for_its_json_counts_as_no_worker_yet(master_ui, tmp_path):
    bodies, port = master_ui
    cluster = StandaloneCluster(workers=2, log_dir=str(tmp_path))
    cluster.ui_port = port
    bodies += [HTML, json.dumps(STATUS).encode()]
    assert cluster.alive_workers() == 0  # the HTML page: not up yet
    assert cluster.alive_workers() == 2  # the JSON page: its ALIVE workers


def test_a_master_not_listening_yet_has_no_worker(tmp_path):
    from lake.standalone import free_port

    cluster = StandaloneCluster(workers=1, log_dir=str(tmp_path))
    cluster.ui_port = free_port()  # nothing listens there
    assert cluster.alive_workers() == 0
