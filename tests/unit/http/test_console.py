"""The console in process: login, cookie flags, CSRF on every change, typed counts, masking."""

from __future__ import annotations

import re

import pytest
import redis
from fastapi.testclient import TestClient

from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.http.services import current_services
from tasks.http.tokens import NewToken
from tasks.state.enums import Reason
from tests.support.broker import Broker
from tests.support.environments import NOWHERE_REDIS_URL, make_settings
from tests.support.http_client import api_client, new_token
from tests.support.runtime import installed

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def dead_letter(rt: Runtime, key: str, reason: Reason = Reason.REJECTED) -> None:
    """A dead-lettered send to +48 505 606 707 with a private parameter."""
    request = build_send_request(23541, mobile="+48505606707", parameters={"code": "918273"})
    rt.ledger.claim(key, request, ["t1", "t2"])
    rt.dead_letters.add(
        key, reason=reason, detail="HTTP 400 for 48505606707", error=None, task_ids=["t1", "t2"]
    )


def log_in(client: TestClient, token: NewToken) -> str:
    """Log in through the form; the session's CSRF token."""
    form = client.get("/console/login")
    nonce = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/console/login", data={"token": token.text, "csrf": nonce})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/dead-letters")
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


@pytest.fixture
def operator(client: TestClient) -> NewToken:
    """A token of scope operate."""
    return new_token("ops", "operate")


def test_the_session_cookie_is_httponly_and_samesite_strict(
    client: TestClient, operator: NewToken
) -> None:
    """Over plain HTTP: HttpOnly, SameSite=Strict, no Secure (a browser would drop it)."""
    form = client.get("/console/login")
    nonce = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/console/login", data={"token": operator.text, "csrf": nonce})
    cookie = next(v for v in answer.headers.get_list("set-cookie") if "engage_console=" in v)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie


def test_over_https_the_cookie_is_secure(runtime: Runtime, operator: NewToken) -> None:
    """Served over HTTPS, the session cookie carries Secure."""
    with api_client("https://console.example") as client:
        form = client.get("/console/login")
        nonce = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/console/login", data={"token": operator.text, "csrf": nonce})
    cookie = next(v for v in answer.headers.get_list("set-cookie") if "engage_console=" in v)
    assert "; Secure" in cookie


def test_a_send_token_cannot_log_in(client: TestClient) -> None:
    """Only scope operate opens the console."""
    form = client.get("/console/login")
    nonce = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    sender = new_token("shop", "send")
    answer = client.post("/console/login", data={"token": sender.text, "csrf": nonce})
    assert answer.status_code == 401
    assert client.get("/console/dead-letters").status_code == 303  # to the login page


def test_login_without_its_csrf_value_is_refused(client: TestClient, operator: NewToken) -> None:
    """The login form's value must match its cookie."""
    client.get("/console/login")
    answer = client.post("/console/login", data={"token": operator.text, "csrf": "guess"})
    assert answer.status_code == 403


def test_replay_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, operator: NewToken, runtime: Runtime, broker: Broker
) -> None:
    """403 without it; with it, the entry is replayed (one message published)."""
    dead_letter(runtime, "k-1")
    csrf = log_in(client, operator)
    refused = client.post("/console/replay", data={"key": "k-1"})
    assert refused.status_code == 403
    assert runtime.dead_letters.get("k-1") is not None
    assert broker.published == []
    done = client.post("/console/replay", data={"key": "k-1", "csrf": csrf})
    assert (done.status_code, done.headers["location"]) == (303, "/console/sends/k-1")
    assert runtime.dead_letters.get("k-1") is None
    assert len(broker.published) == 1


def test_outcome_unknown_needs_the_extra_confirmation(
    client: TestClient, operator: NewToken, runtime: Runtime, broker: Broker
) -> None:
    """Without the tick, an outcome_unknown entry stays; with it, it is replayed."""
    dead_letter(runtime, "k-1", Reason.OUTCOME_UNKNOWN)
    csrf = log_in(client, operator)
    first = client.post("/console/replay", data={"key": "k-1", "csrf": csrf})
    assert first.status_code == 409
    assert runtime.dead_letters.get("k-1") is not None
    done = client.post(
        "/console/replay", data={"key": "k-1", "csrf": csrf, "confirm_unknown": "yes"}
    )
    assert done.status_code == 303
    assert len(broker.published) == 1


def test_purge_all_of_a_reason_needs_the_count_typed(
    client: TestClient, operator: NewToken, runtime: Runtime
) -> None:
    """A wrong count changes nothing; the count shown purges exactly those entries."""
    for n in range(3):
        dead_letter(runtime, f"k-{n}")
    dead_letter(runtime, "other", Reason.AUTH_FAILED)
    csrf = log_in(client, operator)
    confirm = client.get("/console/batch/purge?reason=rejected")
    assert confirm.status_code == 200
    seen = re.search(r'name="seen" value="([^"]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    form = {"reason": "rejected", "seen": seen, "csrf": csrf}
    assert client.post("/console/batch/purge", data={**form, "typed": "2"}).status_code == 409
    assert runtime.dead_letters.depth_by_reason() == {"rejected": 3, "auth_failed": 1}
    assert client.post("/console/batch/purge", data={**form, "typed": "3"}).status_code == 200
    assert runtime.dead_letters.depth_by_reason() == {"auth_failed": 1}


def test_a_batch_whose_entries_changed_is_not_run(
    client: TestClient, operator: NewToken, runtime: Runtime, broker: Broker
) -> None:
    """An entry that arrived after the count was shown makes the operator look again."""
    dead_letter(runtime, "k-1")
    csrf = log_in(client, operator)
    confirm = client.get("/console/batch/replay?reason=rejected")
    seen = re.search(r'name="seen" value="([^"]+)"', confirm.text).group(1)  # type: ignore[union-attr]
    dead_letter(runtime, "k-2")
    answer = client.post(
        "/console/batch/replay",
        data={"reason": "rejected", "seen": seen, "csrf": csrf, "typed": "2"},
    )
    assert answer.status_code == 409
    assert broker.published == []


def test_pages_show_masked_values_only(
    client: TestClient, operator: NewToken, runtime: Runtime
) -> None:
    """No page carries the number or the parameter value; the masked number is there."""
    dead_letter(runtime, "k-1")
    log_in(client, operator)
    for path in ("/console/dead-letters", "/console/dead-letters/k-1", "/console/sends/k-1"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "48505606707" not in page.text
        assert "918273" not in page.text
        assert "48*******07" in page.text


def test_a_get_changes_nothing(client: TestClient, operator: NewToken, runtime: Runtime) -> None:
    """GET on the action URLs neither replays nor purges."""
    dead_letter(runtime, "k-1")
    log_in(client, operator)
    client.get("/console/batch/purge?reason=rejected")
    client.get("/console/replay?key=k-1")
    assert runtime.dead_letters.get("k-1") is not None


def test_redis_down_is_a_503_page_not_a_traceback(broker: Broker) -> None:
    """The console and the API answer 503 (HTML, JSON) when Redis does not answer."""
    rt = Runtime.build(make_settings(), redis_client=redis.Redis.from_url(NOWHERE_REDIS_URL))
    with installed(rt), api_client() as client:
        client.cookies.set("engage_console", "x", path="/console")
        page = client.get("/console/dead-letters")
        status = client.get("/v1/sends/k-1", headers={"Authorization": "Bearer esk_x"})
        token = "esk_0123456789abcdef_" + "a" * 43
        api = client.get("/v1/sends/k-1", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 503
    assert "did not answer" in page.text
    assert status.status_code == 401  # malformed: refused before Redis is asked
    assert (api.status_code, api.json()["error"]) == (503, "service_unavailable")
    assert api.headers["Retry-After"] == "5"


def test_revoking_the_token_ends_its_sessions(client: TestClient, operator: NewToken) -> None:
    """A revoked operator is sent back to the login page at the next request."""
    log_in(client, operator)
    assert current_services().tokens.revoke("ops")
    answer = client.get("/console/dead-letters")
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/login")


def test_logging_out_needs_the_csrf_token_and_ends_the_session(
    client: TestClient, operator: NewToken
) -> None:
    """Without it: 403 and still logged in; with it: the session is gone."""
    csrf = log_in(client, operator)
    assert client.post("/console/logout").status_code == 403
    assert client.get("/console/dead-letters").status_code == 200
    assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/console/dead-letters").status_code == 303


def test_a_link_cannot_put_words_on_the_login_page(client: TestClient) -> None:
    """GET /console/login?problem=... showed the text of the link in the page's problem box:
    anyone could send an operator a genuine console link telling them where to paste a token."""
    lure = "Session expired: paste your token at https://evil.example/login"
    page = client.get("/console/login", params={"problem": lure})
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert 'class="problem"' not in page.text
