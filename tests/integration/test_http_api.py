"""The HTTP API end to end: ``engage-sms api`` and a real worker, Redis and the sandbox.

Tokens are made with ``engage-sms tokens create`` as an operator would; requests go over HTTP
with ``requests``; the sandbox counts what Engage would have sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tasks.cli.local_stack import ManagedProcess
from tasks.cli.redis_server import RedisServer
from tasks.http.callbacks import SIGNATURE_HEADER, verify
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support.environments import WORKER_ENV, bare_env, child_env
from tests.support.http_server import CallbackReceiver, api_process, free_port, start_api
from tests.support.processes import run_module

pytestmark = pytest.mark.integration

BODY = {"message_id": 23541, "mobile": "+48 505 606 707", "parameters": {"firstName": "Ann"}}


@dataclass(frozen=True)
class Issued:
    """A token as ``tokens create`` printed it."""

    token: str
    callback_secret: str


def create_token(env: dict[str, str], name: str, scope: str) -> Issued:
    """``engage-sms tokens create NAME --scope SCOPE``: the last line is the token."""
    result = run_module("tasks.cli", "tokens", "create", name, "--scope", scope, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    secret = next(line for line in lines if line.startswith("callback secret")).split()[-1]
    return Issued(lines[-1], secret)


@dataclass
class Stack:
    """The API's base URL, the environment it runs with, and its tokens."""

    url: str
    env: dict[str, str]
    sender: Issued
    http: requests.Session

    def post(self, key: str | None, body: object, token: str | None = None) -> requests.Response:
        """POST /v1/sends as a web app would."""
        headers = {"Authorization": f"Bearer {token or self.sender.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.http.post(f"{self.url}/v1/sends", json=body, headers=headers, timeout=30)

    def status(self, key: str) -> dict[str, object]:
        """GET the status as the sending token."""
        headers = {"Authorization": f"Bearer {self.sender.token}"}
        answer = self.http.get(f"{self.url}/v1/sends/{key}", headers=headers, timeout=30)
        return dict(answer.json())


@pytest.fixture
def stack(start_workers: WorkerFactory, sandbox: Sandbox, tmp_path: Path) -> Iterator[Stack]:
    """A worker on the sandbox, ``engage-sms api`` beside it, and a send token."""
    start_workers(sandbox.base_url)
    env = child_env(WORKER_ENV, ENGAGE_BASE_URL=sandbox.base_url)
    port = free_port()
    api = start_api(api_process(env, tmp_path / "api.log", port))
    try:
        with requests.Session() as http:
            yield Stack(f"http://127.0.0.1:{port}", env, create_token(env, "shop", "send"), http)
    finally:
        api.stop()


def test_repeated_posts_send_one_sms(stack: Stack, sandbox: Sandbox) -> None:
    """Eight POSTs of one key, four at once: one created, all 202, one SMS at the sandbox."""
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with requests.Session() as own:
            headers = {
                "Authorization": f"Bearer {stack.sender.token}",
                "Idempotency-Key": "order-1042-shipped",
            }
            answer = own.post(f"{stack.url}/v1/sends", json=BODY, headers=headers, timeout=30)
        with lock:
            answers.append(answer)

    racers = [threading.Thread(target=post) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    answers += [stack.post("order-1042-shipped", BODY) for _ in range(4)]
    assert [a.status_code for a in answers] == [202] * 8
    assert sorted(a.json()["created"] for a in answers) == [False] * 7 + [True]
    status = wait_for(
        lambda: (s := stack.status("order-1042-shipped"))["state"] == "sent" and s,
        30,
        "the send to be sent",
    )
    assert status["recipient"] == "MOBILE:48*******07"
    assert sandbox.state.sends == {(23541, 33457): 1}
    again = stack.post("order-1042-shipped", BODY)
    assert (again.status_code, again.json()["created"]) == (202, False)
    assert sandbox.state.sends == {(23541, 33457): 1}


def test_reuse_auth_and_validation_over_http(stack: Stack) -> None:
    """422 on reuse, 401 without or with a bad token, 403 out of scope, 400 naming the field."""
    assert stack.post("k-1", BODY).status_code == 202
    reused = stack.post("k-1", {**BODY, "parameters": {"firstName": "Bob"}})
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    anonymous = stack.http.post(f"{stack.url}/v1/sends", json=BODY, timeout=30)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthorized")
    assert stack.post("k-2", BODY, token=stack.sender.token + "x").status_code == 401
    reader = create_token(stack.env, "dashboard", "read")
    assert stack.post("k-3", BODY, token=reader.token).status_code == 403
    for body, field in [
        ({**BODY, "mobile": "12"}, "mobile"),
        ({**BODY, "message_id": -1}, "message_id"),
        ({**BODY, "priority": "now"}, "priority"),
        ({**BODY, "callback_url": "http://example.com/x"}, "callback_url"),
    ]:
        answer = stack.post("k-4", body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == field
    missing = stack.post(None, BODY)
    assert (missing.status_code, missing.json()["field"]) == (400, "Idempotency-Key")


def test_the_signed_callback_reaches_the_callers_server(stack: Stack, sandbox: Sandbox) -> None:
    """The final status arrives as a POST whose signature verifies with the token's secret;
    a 500 from the receiver is retried."""
    with CallbackReceiver(fail=1, secret=stack.sender.callback_secret).running() as receiver:
        answer = stack.post("order-7", {**BODY, "callback_url": receiver.url})
        assert answer.status_code == 202
        wait_for(lambda: len(receiver.deliveries) >= 2, 30, "the callback, retried once")
    first, delivered = receiver.deliveries[:2]
    assert first.body == delivered.body
    assert first.verified
    assert delivered.verified
    assert verify(stack.sender.callback_secret, delivered.body, delivered.headers[SIGNATURE_HEADER])
    assert not verify("not the secret", delivered.body, delivered.headers[SIGNATURE_HEADER])
    status = json.loads(delivered.body)
    assert (status["key"], status["state"]) == ("order-7", "sent")
    assert b"48505606707" not in delivered.body
    assert b"Ann" not in delivered.body
    assert sandbox.state.sends == {(23541, 33457): 1}


TIMELINE_ROW = re.compile(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>")


def console_page(stack: Stack, path: str) -> str:
    """A console page, logged in with a new operate token through the login form."""
    operator = create_token(stack.env, "ops", "operate")
    with requests.Session() as browser:
        form = browser.get(f"{stack.url}/console/login", timeout=30).text
        nonce = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        data = {"token": operator.token, "csrf": nonce}
        assert browser.post(f"{stack.url}/console/login", data=data, timeout=30).ok
        page = browser.get(f"{stack.url}{path}", timeout=30)
    assert page.status_code == 200, page.text
    return page.text


def test_the_console_timeline_lists_each_engage_call(stack: Stack, sandbox: Sandbox) -> None:
    """A send retried after a 503: the timeline shows contact/get 200 (unless the id was
    cached), sendSingle 503 retried, sendSingle 204, each at its time, then sent; no private
    value on the page."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [503]}})
    assert stack.post("order-9", BODY).status_code == 202
    wait_for(lambda: stack.status("order-9").get("state") == "sent", 60, "sent after a retry")
    page = console_page(stack, "/console/sends/order-9")
    rows = [(what, detail) for at, what, detail in TIMELINE_ROW.findall(page) if at]
    calls = [(what, " ".join(detail.split()[:2])) for what, detail in rows if "/" in what]
    # An earlier test of this module may have left the contact id cached: then no lookup.
    looked_up = [("contact/get: ok", "HTTP 200")] if sandbox.state.calls_to("contact/get") else []
    assert calls == [
        *looked_up,
        ("message/sendSingle: retry", "HTTP 503"),
        ("message/sendSingle: ok", "HTTP 204"),
    ]
    assert "HTTP 503 UNEXPECTED_ERROR; retry in" in next(
        detail for what, detail in rows if what.endswith("retry")
    )
    assert "sent" in [what for what, _ in rows]
    assert "48505606707" not in page
    assert "Ann" not in page


def test_with_redis_stopped_the_api_answers_503_then_recovers(tmp_path: Path) -> None:
    """Redis (a server of this test's own) stopped: 503 with Retry-After, /readyz 503; started
    again: the same request is accepted."""
    server = RedisServer(tmp_path / "redis").start()
    api: ManagedProcess | None = None
    try:
        env = bare_env(CELERY_BROKER_URL=server.url)
        issued = create_token(env, "shop", "send")
        port = free_port()
        api = start_api(api_process(env, tmp_path / "api.log", port))
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {issued.token}", "Idempotency-Key": "k-1"}
        assert requests.get(f"{url}/readyz", timeout=30).status_code == 200
        server.stop()
        down = requests.post(f"{url}/v1/sends", json=BODY, headers=headers, timeout=60)
        assert down.status_code == 503
        assert down.json()["error"] == "service_unavailable"
        assert int(down.headers["Retry-After"]) > 0
        assert requests.get(f"{url}/readyz", timeout=60).status_code == 503
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
        server.start()
        up = requests.post(f"{url}/v1/sends", json=BODY, headers=headers, timeout=60)
        assert (up.status_code, up.json()["created"]) == (202, True)
        queued = redis.Redis.from_url(server.url).hget("engage:send:k-1", "state")
        assert queued == b"queued"
    finally:
        if api is not None:
            api.stop()
        server.stop()
