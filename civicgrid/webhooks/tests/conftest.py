"""A real HTTP receiver in a thread, an integration subscribed to it, and the
signature check exactly as docs/webhooks.md tells receivers to write it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from civicgrid.accounts.models import Integration, Scope
from civicgrid.accounts.services import create_integration
from civicgrid.webhooks import outbox, services
from civicgrid.webhooks.models import Subscription

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def documented_verifier() -> Callable[..., Any]:
    """The ``verify`` function of the recipe in docs/webhooks.md, executed as written."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- recipe -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/webhooks.md lost its verification recipe"
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["X-Civicgrid-Event-Id"]


@dataclass
class Receiver:
    """Records every POST; answers ``status`` (change it to take the receiver down)."""

    url: str = ""
    status: int = 200
    #: Seconds to wait before answering (a slow receiver).
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.answered < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(state.delay)
            with state.lock:
                answer = state.status
                state.requests.append(Received(dict(self.headers.items()), body, answer))
            self.send_response(answer)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if answer < 300 else b"receiver is down")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/civicgrid"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _fresh_outbox_cache() -> Iterator[None]:
    outbox.invalidate()
    yield
    outbox.invalidate()


@pytest.fixture
def partner(db: None, tree: Any) -> Integration:
    """The city's 12345 platform, following the cases of the whole district."""
    return create_integration(name="12345 平台", scopes=[Scope.CASES_READ])


@pytest.fixture
def subscription(partner: Integration, receiver: Receiver) -> Subscription:
    return services.create_subscription(integration=partner, target_url=receiver.url)
