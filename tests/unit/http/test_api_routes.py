"""The JSON API in process: tokens, Idempotency-Key, validation, limits, one error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tasks.delivery.runtime import Runtime
from tasks.http.api_routes import SendsApi
from tasks.http.app import create_app
from tasks.http.limits import TokenLimits
from tasks.http.problems import ApiError
from tasks.http.sends import SendOwner
from tasks.http.services import current_services
from tasks.http.tokens import NewToken, Scope, TokenStore
from tasks.state.hashing import KeyHasher
from tests.support.broker import Broker
from tests.support.environments import make_settings
from tests.support.http_client import api_client, bearer, new_token
from tests.support.runtime import fake_runtime, installed

BODY = {"message_id": 23541, "mobile": "+48 505 606 707", "parameters": {"firstName": "Ann"}}


def error_of(answer: Any) -> tuple[int, str, str | None]:
    """An error answer as (status, error, field)."""
    body = answer.json()
    assert set(body) == {"error", "message", "field"}
    return answer.status_code, body["error"], body["field"]


def test_first_post_is_created_and_the_same_again_is_not(
    client: TestClient, sender: NewToken, broker: Broker
) -> None:
    """202 created, then 202 not created with the same key: one message published."""
    first = client.post("/v1/sends", json=BODY, headers=bearer(sender, "order-1"))
    again = client.post("/v1/sends", json=BODY, headers=bearer(sender, "order-1"))
    assert first.status_code == again.status_code == 202
    assert first.json() == {
        "key": "order-1",
        "state": "queued",
        "created": True,
        "status_url": "/v1/sends/order-1",
    }
    assert again.json()["created"] is False
    assert again.json()["key"] == "order-1"
    assert len(broker.published) == 1


def test_the_same_key_with_another_request_is_422(client: TestClient, sender: NewToken) -> None:
    """Another recipient under a used key: idempotency_key_reused, nothing enqueued."""
    client.post("/v1/sends", json=BODY, headers=bearer(sender, "order-1"))
    other = {**BODY, "mobile": "+48 505 606 708"}
    answer = client.post("/v1/sends", json=other, headers=bearer(sender, "order-1"))
    assert error_of(answer) == (422, "idempotency_key_reused", "Idempotency-Key")


def test_the_same_key_in_another_lane_is_422(client: TestClient, sender: NewToken) -> None:
    """The priority is part of the request: the same body in another lane is a reused key."""
    client.post("/v1/sends", json=BODY, headers=bearer(sender, "order-1"))
    urgent = {**BODY, "priority": "urgent"}
    answer = client.post("/v1/sends", json=urgent, headers=bearer(sender, "order-1"))
    assert error_of(answer) == (422, "idempotency_key_reused", "Idempotency-Key")
    same = {**BODY, "priority": "normal"}
    again = client.post("/v1/sends", json=same, headers=bearer(sender, "order-1"))
    assert (again.status_code, again.json()["created"]) == (202, False)


def test_a_record_kept_before_lanes_were_compared_matches_any_lane(
    client: TestClient, sender: NewToken
) -> None:
    """An HTTP record written without a priority (before the upgrade) is not a reused key."""
    keys = current_services().runtime.keys
    old = SendOwner(sender.token.id, None)
    current_services().owners.claim("old-1", old, keys.send("old-1"))
    urgent = {**BODY, "priority": "urgent"}
    answer = client.post("/v1/sends", json=urgent, headers=bearer(sender, "old-1"))
    assert (answer.status_code, answer.json()["created"]) == (202, True)


def test_the_same_key_from_another_token_is_422(client: TestClient, sender: NewToken) -> None:
    """Keys are not shared between tokens: another token's key is a reused key."""
    client.post("/v1/sends", json=BODY, headers=bearer(sender, "order-1"))
    other = new_token("blog", "send")
    answer = client.post("/v1/sends", json=BODY, headers=bearer(other, "order-1"))
    assert error_of(answer)[:2] == (422, "idempotency_key_reused")


def test_a_key_enqueued_from_python_is_422_over_http(client: TestClient, sender: NewToken) -> None:
    """A key the Python API used is not this token's: 422, not a status of someone else's send."""
    from tasks.api import send_prepared_sms  # noqa: PLC0415  (the public API, as a host app)

    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="py-1")
    answer = client.post("/v1/sends", json=BODY, headers=bearer(sender, "py-1"))
    assert error_of(answer)[:2] == (422, "idempotency_key_reused")


def test_without_idempotency_key_is_400(client: TestClient, sender: NewToken) -> None:
    """The header is required: the HTTP caller's retries are the duplicate risk."""
    answer = client.post("/v1/sends", json=BODY, headers=bearer(sender))
    assert error_of(answer) == (400, "idempotency_key_missing", "Idempotency-Key")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mobile": "+48505606707"}, "message_id"),
        ({**BODY, "message_id": "x"}, "message_id"),
        ({**BODY, "mobile": "12"}, "mobile"),
        ({**BODY, "email": "ann@example.com"}, "recipient"),
        ({"message_id": 23541}, "recipient"),
        ({**BODY, "parameters": ["firstName"]}, "parameters"),
        ({**BODY, "parameters": {"firstName": 7}}, "parameters"),
        ({**BODY, "priority": "asap"}, "priority"),
        ({**BODY, "colour": "red"}, "colour"),
        ({**BODY, "callback_url": "http://example.com/hook"}, "callback_url"),
        ({**BODY, "callback_url": "ftp://127.0.0.1/x"}, "callback_url"),
        ({**BODY, "callback_url": "https://user:pw@example.com/x"}, "callback_url"),
        ([1, 2], "body"),
    ],
)
def test_invalid_input_is_400_naming_the_field(
    client: TestClient, sender: NewToken, body: Any, field: str, broker: Broker
) -> None:
    """invalid_request with the field at fault; nothing enqueued."""
    answer = client.post("/v1/sends", json=body, headers=bearer(sender, "k-1"))
    status, error, named = error_of(answer)
    assert (status, error) == (400, "invalid_request")
    assert named is not None
    assert named.startswith(field) or field in named
    assert broker.published == []


@pytest.mark.parametrize("key", ["", " ", "k" * 256, "del\x7fchar"])
def test_a_malformed_idempotency_key_is_400_naming_the_header(
    client: TestClient, sender: NewToken, key: str
) -> None:
    """Empty, too long or unprintable: invalid_request for Idempotency-Key."""
    headers = {**bearer(sender), "Idempotency-Key": key}
    answer = client.post("/v1/sends", json=BODY, headers=headers)
    assert error_of(answer) == (400, "invalid_request", "Idempotency-Key")


def test_not_json_is_400(client: TestClient, sender: NewToken) -> None:
    """A body that is no JSON names the body."""
    answer = client.post("/v1/sends", content=b"{nope", headers=bearer(sender, "k-1"))
    assert error_of(answer) == (400, "invalid_request", "body")


def test_a_body_over_64_kib_is_413(client: TestClient, sender: NewToken) -> None:
    """payload_too_large, before anything is parsed."""
    body = b'{"pad": "' + b"x" * 70_000 + b'"}'
    answer = client.post("/v1/sends", content=body, headers=bearer(sender, "k-1"))
    assert error_of(answer)[:2] == (413, "payload_too_large")


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Basic abc", "Bearer esk_0000000000000000_" + "a" * 43]
)
def test_no_or_unknown_token_is_401(client: TestClient, authorization: str | None) -> None:
    """Without a valid bearer token: unauthorized."""
    headers = {"Idempotency-Key": "k-1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = client.post("/v1/sends", json=BODY, headers=headers)
    assert error_of(answer)[:2] == (401, "unauthorized")


def test_a_revoked_token_is_401(client: TestClient, runtime: Runtime) -> None:
    """Revoking takes effect at once."""
    token = new_token("old", "send")
    assert current_services().tokens.revoke("old")
    answer = client.post("/v1/sends", json=BODY, headers=bearer(token, "k-1"))
    assert error_of(answer)[:2] == (401, "unauthorized")


def test_a_token_made_after_redis_lost_its_data_works_without_a_restart(
    client: TestClient, runtime: Runtime
) -> None:
    """Redis loses everything, the CLI (another process: its own hasher) makes a new token under
    a new secret: the running API accepts it; the lost token is 401 saying why."""
    old = new_token("shop", "send")
    assert client.get("/v1/sends/x", headers=bearer(old)).status_code == 404
    runtime.redis.flushall()  # this test's own fakeredis: the data loss
    lost = client.get("/v1/sends/x", headers=bearer(old))
    assert error_of(lost)[:2] == (401, "unauthorized")
    assert "lost its data" in lost.json()["message"]
    cli = TokenStore(
        runtime.redis,
        keys=current_services().keys,
        hasher=KeyHasher(runtime.redis, keys=runtime.keys),
    )
    fresh = cli.create("shop", Scope.SEND)
    assert client.get("/v1/sends/x", headers=bearer(fresh)).status_code == 404


def test_a_read_token_may_not_send_403(client: TestClient) -> None:
    """Scope read cannot enqueue."""
    reader = new_token("dash", "read")
    answer = client.post("/v1/sends", json=BODY, headers=bearer(reader, "k-1"))
    assert error_of(answer)[:2] == (403, "forbidden")


def test_status_for_the_sender_and_readers_not_for_other_senders(
    client: TestClient, sender: NewToken
) -> None:
    """GET by the sending token or a read token; another send token sees 404."""
    client.post("/v1/sends", json=BODY, headers=bearer(sender, "order/1"))
    mine = client.get("/v1/sends/order%2F1", headers=bearer(sender))
    assert mine.status_code == 200
    assert mine.json()["key"] == "order/1"
    assert mine.json()["recipient"] == "MOBILE:48*******07"
    assert "48505606707" not in mine.text
    assert "Ann" not in mine.text
    assert (
        client.get("/v1/sends/order%2F1", headers=bearer(new_token("r", "read"))).status_code == 200
    )
    other = client.get("/v1/sends/order%2F1", headers=bearer(new_token("blog", "send")))
    assert error_of(other)[:2] == (404, "not_found")


def test_status_of_an_unknown_key_is_404(client: TestClient) -> None:
    """not_found."""
    answer = client.get("/v1/sends/nope", headers=bearer(new_token("r", "read")))
    assert error_of(answer)[:2] == (404, "not_found")


def test_health_and_readiness(client: TestClient) -> None:
    """/healthz needs nothing; /readyz checks Redis and the broker."""
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "broker": "ok"}


def test_not_ready_is_503_with_retry_after(client: TestClient, broker: Broker) -> None:
    """/readyz with the broker away: 503 and a Retry-After, like every other 503."""
    with broker.unreachable():
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"].startswith("unavailable")
    assert int(answer.headers["Retry-After"]) >= 1


def test_over_the_rate_limit_is_429_with_retry_after(broker: Broker) -> None:
    """ENGAGE_HTTP_RATE_LIMIT=1: of three quick requests, two share a second, so one is refused."""
    rt = fake_runtime(make_settings(ENGAGE_HTTP_RATE_LIMIT="1"))
    with installed(rt), api_client() as client:
        token = new_token("shop", "send")
        answers = [
            client.post("/v1/sends", json=BODY, headers=bearer(token, f"k-{n}")) for n in range(3)
        ]
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert error_of(refused[0])[:2] == (429, "rate_limited")
    assert int(refused[0].headers["Retry-After"]) >= 1


def test_the_rate_limit_counts_per_second_per_token(runtime: Runtime) -> None:
    """admit refuses the request past the limit within one second, and names the wait."""
    s = current_services()
    token = s.tokens.create("shop", Scope.SEND).token
    other = s.tokens.create("blog", Scope.SEND).token
    limits = TokenLimits(runtime.redis, keys=s.keys, rate_limit=2)
    assert limits.admit(token, now=100.25) is None
    assert limits.admit(token, now=100.5) is None
    assert limits.admit(token, now=100.75) == pytest.approx(0.25)
    assert limits.admit(other, now=100.8) is None
    assert limits.admit(token, now=101.0) is None


def test_the_daily_cap_refuses_new_sends_not_repeats(client: TestClient, broker: Broker) -> None:
    """--daily-cap 1: a second new send is 429 daily_cap_reached; repeating the first is fine."""
    capped = new_token("capped", "send", daily_cap=1)
    assert client.post("/v1/sends", json=BODY, headers=bearer(capped, "a")).status_code == 202
    second = client.post("/v1/sends", json=BODY, headers=bearer(capped, "b"))
    assert error_of(second)[:2] == (429, "daily_cap_reached")
    assert int(second.headers["Retry-After"]) >= 1
    again = client.post("/v1/sends", json=BODY, headers=bearer(capped, "a"))
    assert (again.status_code, again.json()["created"]) == (202, False)
    assert len(broker.published) == 1


def test_unknown_paths_answer_in_the_one_error_shape(client: TestClient) -> None:
    """404 and 405 are JSON like every other error."""
    assert error_of(client.get("/v2/nothing"))[:2] == (404, "not_found")
    assert error_of(client.delete("/v1/sends"))[:2] == (405, "method_not_allowed")


def test_broker_down_is_503_and_a_retry_after_it_is_created(
    client: TestClient, broker: Broker
) -> None:
    """503 with Retry-After, nothing left behind (no key owner, no use of the daily cap): the
    same request afterwards is created, within a cap of one."""
    capped = new_token("capped", "send", daily_cap=1)
    with broker.unreachable():
        down = client.post("/v1/sends", json=BODY, headers=bearer(capped, "order-1"))
        ready = client.get("/readyz")
    assert error_of(down)[:2] == (503, "service_unavailable")
    assert int(down.headers["Retry-After"]) > 0
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"].startswith("unavailable")
    again = client.post("/v1/sends", json=BODY, headers=bearer(capped, "order-1"))
    assert (again.status_code, again.json()["created"]) == (202, True)
    assert len(broker.published) == 1


def test_a_concurrent_repeat_cannot_send_past_the_daily_cap(
    client: TestClient, broker: Broker
) -> None:
    """At the cap, a repeat racing the first request of a key (whose record is written, its
    enqueue not yet done) is refused too: no send past the cap, and never a 422 for the very
    same request once the first was refused."""
    capped = new_token("capped", "send", daily_cap=1)
    assert client.post("/v1/sends", json=BODY, headers=bearer(capped, "a")).status_code == 202
    # The first request of "b" has written its record and is about to find the cap full.
    current_services().owners.claim(
        "b", SendOwner(capped.token.id, None), current_services().runtime.keys.send("b")
    )
    racing = client.post("/v1/sends", json=BODY, headers=bearer(capped, "b"))
    assert error_of(racing)[:2] == (429, "daily_cap_reached")
    later = client.post("/v1/sends", json=BODY, headers=bearer(capped, "b"))
    assert error_of(later)[:2] == (429, "daily_cap_reached")
    assert len(broker.published) == 1
    assert current_services().limits.sent_today(capped.token) == 1


def test_a_non_ascii_idempotency_key_is_the_caller_s_utf_8_text(
    client: TestClient, sender: NewToken
) -> None:
    """The header's bytes are read as UTF-8: the key is "clé" (as the Python API and the CLI
    spell it), not its Latin-1 mojibake; its status_url reads it back."""
    headers = {**bearer(sender), "Idempotency-Key": "zamówienie-é".encode()}
    answer = client.post("/v1/sends", json=BODY, headers=headers)
    assert answer.status_code == 202
    assert answer.json()["key"] == "zamówienie-é"
    status = client.get(answer.json()["status_url"], headers=bearer(sender))
    assert status.json()["key"] == "zamówienie-é"
    from tasks.api import delivery_status  # noqa: PLC0415  (the public API, as a host app)

    assert delivery_status("zamówienie-é")["state"] == "queued"


def test_an_idempotency_key_that_is_not_utf_8_is_400(client: TestClient, sender: NewToken) -> None:
    """Bytes that are no UTF-8 (the server hands them over as Latin-1 text; the test client
    would re-encode them, so the API is called as the route calls it): invalid_request naming
    the header, nothing enqueued."""
    api = SendsApi(current_services())
    with pytest.raises(ApiError) as refused:
        api.create(f"Bearer {sender.text}", b"cl\xe9".decode("latin-1"), json.dumps(BODY).encode())
    assert (refused.value.status, refused.value.body.error) == (400, "invalid_request")
    assert refused.value.body.field == "Idempotency-Key"


@pytest.mark.parametrize(
    "body",
    [
        b'{"message_id": 1, "parameters": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        b'{"message_id": 1' + b"0" * 5_000 + b', "mobile": "+48 505 606 707"}',
    ],
    ids=["nested-30000-deep", "integer-of-5000-digits"],
)
def test_json_python_cannot_read_is_400_not_a_crash(
    client: TestClient, sender: NewToken, body: bytes
) -> None:
    """Small bodies json.loads fails on with other errors than JSONDecodeError (30,000 nested
    arrays: RecursionError; an integer of 5,000 digits: ValueError): invalid_request for the
    body, not a 500."""
    answer = client.post("/v1/sends", content=body, headers=bearer(sender, "k-1"))
    assert error_of(answer) == (400, "invalid_request", "body")


def test_an_unexpected_failure_is_500_in_the_one_error_shape(
    runtime: Runtime, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is answered in JSON like every other error, naming nothing of the request."""

    def crash(*_: object) -> None:
        raise RuntimeError("secret +48505606707")

    monkeypatch.setattr("tasks.http.api_routes.parse_send_body", crash)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        sender = new_token("shop", "send")
        answer = client.post("/v1/sends", json=BODY, headers=bearer(sender, "k-1"))
    assert error_of(answer) == (500, "internal_error", None)
    assert "48505606707" not in answer.text


def test_idempotency_key_sent_twice_is_one_key_as_http_combines_it(
    client: TestClient, sender: NewToken
) -> None:
    """Two Idempotency-Key lines are one value joined by a comma (RFC 9110, 5.3), as a proxy
    that merges them would pass it on: never just the first, so no hop reads another key."""
    headers = [*bearer(sender).items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    answer = client.post("/v1/sends", json=BODY, headers=headers)
    assert answer.status_code == 202
    assert answer.json()["key"] == "a, b"
    merged = client.post(
        "/v1/sends", json=BODY, headers={**bearer(sender), "Idempotency-Key": "a, b"}
    )
    assert merged.json()["created"] is False


def test_a_token_revoked_while_its_request_is_under_way_stays_revoked(
    client: TestClient, sender: NewToken
) -> None:
    """Revoked between a request's authentication and its rate count (which writes the token's
    last-used time): the token answers 401 afterwards, not a 500 on a half-written record, and
    the callback dispatcher finds no token rather than failing its whole round."""
    s = current_services()
    assert s.tokens.revoke("shop")
    s.limits.admit(sender.token)  # the request in flight, counted just after the revoke
    answer = client.post("/v1/sends", json=BODY, headers=bearer(sender, "k-1"))
    assert error_of(answer)[:2] == (401, "unauthorized")
    assert s.tokens.get(sender.token.id) is None
    assert [token.name for token in s.tokens.tokens()] == []
