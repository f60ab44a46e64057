"""What a step keeps of an Engage answer echoing the request: masked by value, REST and SOAP alike.

The sandbox's faults echo the recipient and the parameter values; everything that leaves a step
(the ledger, the dead letter, the log, the exceptions Celery logs and Flower shows, with their
chain) must hold them masked only.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from tasks.core.errors import DeadLettered, EngageServerError
from tasks.core.request import SendRequest, build_send_request
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import DeadLetter, Resolved, Retry, StepOutcome
from tasks.delivery.runtime import Runtime
from tasks.delivery.steps import StepContext
from tasks.sandbox import Sandbox
from tasks.worker import pipeline
from tests.support.environments import make_settings
from tests.support.recording_task import RecordingTask
from tests.support.runtime import fake_runtime, installed

EXTERNAL_ID = "crm-Kowalski-7731"
EMAIL = "jan.kowalski@example.com"
PARAMETER = "Zebulon Quartz"
MOBILE = "48505606707"
SECRETS = (EXTERNAL_ID, EMAIL, PARAMETER, MOBILE, "505606707")


@pytest.fixture(params=["rest", "soap"])
def transport_runtime(
    request: pytest.FixtureRequest, sandbox: Sandbox, fake_redis: fakeredis.FakeRedis
) -> Iterator[Runtime]:
    """A fakeredis runtime talking to the sandbox over each transport."""
    soap = request.param == "soap"
    settings = make_settings(
        sandbox.soap_url if soap else sandbox.base_url, ENGAGE_TRANSPORT=request.param
    )
    with installed(fake_runtime(settings, redis_client=fake_redis)) as rt:
        yield rt


def ctx(retries: int = 0) -> StepContext:
    """The step context of the send under k1."""
    return StepContext(key="k1", task_id="s1", retries=retries, task_ids=["r1", "s1"])


def claimed(rt: Runtime, request: SendRequest) -> Runtime:
    """``rt`` with k1 claimed for ``request``."""
    rt.ledger.claim("k1", request, ["r1", "s1"])
    return rt


def dead_lettered(outcome: StepOutcome) -> DeadLettered:
    """What the pipeline fails the task with for ``outcome``, a dead letter."""
    assert isinstance(outcome, DeadLetter)
    with pytest.raises(DeadLettered) as caught:
        pipeline._conclude(RecordingTask(), ctx(), outcome)
    return caught.value


def email_echoed_by_a_400(rt: Runtime, sandbox: Sandbox) -> DeadLettered:
    """k1 to :data:`EMAIL` resolved against a 400 that quotes the address: its dead letter."""
    request = build_send_request(23541, email=EMAIL)
    sandbox.state.set_faults({"script": {"contact/get": ["echo:400"]}})
    return dead_lettered(delivery.resolve(claimed(rt, request), request, ctx()))


def shown(err: BaseException) -> str:
    """The exception as Celery logs it and Flower shows it: repr, args and the whole chain."""
    chain = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return f"{err!r} {err.args} {chain}"


def leaked(text: str) -> list[str]:
    """The private values found in ``text``."""
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def test_page_echoing_an_external_id_is_retried_with_the_id_masked(
    transport_runtime: Runtime, sandbox: Sandbox
) -> None:
    """A lookup answered by a page quoting the id: the retry's error and the ledger hide it."""
    request = build_send_request(23541, external_id=EXTERNAL_ID)
    rt = claimed(transport_runtime, request)
    sandbox.state.set_faults({"script": {"contact/get": ["html:echo"]}})
    outcome = delivery.resolve(rt, request, ctx())
    assert isinstance(outcome, Retry)
    assert outcome.error is not None
    assert "Sign in to continue with ***" in str(outcome.error)
    assert leaked(shown(outcome.error)) == []
    assert leaked(str(rt.ledger.status("k1"))) == []


def test_error_echoing_an_email_is_dead_lettered_masked(
    transport_runtime: Runtime, sandbox: Sandbox
) -> None:
    """A 400 quoting the address: DeadLettered, its chain and the entry show it masked only."""
    rt = transport_runtime
    failure = email_echoed_by_a_400(rt, sandbox)
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["error"]["message"] == "Invalid value 'j***@example.com'."
    assert leaked(shown(failure)) == []
    assert leaked(str(entry)) == []


def test_send_error_echoing_parameter_values_is_retried_masked(
    transport_runtime: Runtime, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 quoting the placeholders: the retry, its chain, the ledger and the log hide them."""
    request = build_send_request(
        23541, mobile="+48505606707", parameters={"name": PARAMETER, "ref": EXTERNAL_ID}
    )
    rt = claimed(transport_runtime, request)
    sandbox.state.set_faults({"script": {"message/sendSingle": ["echo:503"]}})
    with caplog.at_level(logging.INFO):
        outcome = delivery.send(rt, request, 33457, ctx())
    assert isinstance(outcome, Retry)
    assert outcome.error is not None
    assert "Failed while processing '***', '***'." in str(outcome.error)
    assert leaked(shown(outcome.error)) == []
    assert leaked(str(rt.ledger.status("k1"))) == []
    assert leaked(caplog.text) == []


def test_raised_failure_is_chained_to_the_masked_copy_only(
    transport_runtime: Runtime, sandbox: Sandbox
) -> None:
    """The dead letter's cause is the masked error, and the raw one is hidden as context."""
    failure = email_echoed_by_a_400(transport_runtime, sandbox)
    cause = failure.__cause__
    assert cause is not None
    assert "j***@example.com" in str(cause)
    assert failure.__suppress_context__


def test_contact_id_quoted_by_an_answer_stays_readable(
    transport_runtime: Runtime, sandbox: Sandbox
) -> None:
    """A long contact id echoed by a page is kept readable, in the error and in the status."""
    sandbox.state.add_contacts(
        [{"type": "MOBILE", "value": "48600000001", "contactId": 1234567890}]
    )
    request = build_send_request(23541, mobile="+48600000001")
    rt = claimed(transport_runtime, request)
    assert delivery.resolve(rt, request, ctx()) == Resolved(1234567890)
    sandbox.state.set_faults({"script": {"message/sendSingle": ["html:echo"]}})
    outcome = delivery.send(rt, request, 1234567890, ctx())
    assert isinstance(outcome, Retry)
    assert "Sign in to continue with 1234567890" in str(outcome.error)
    assert rt.ledger.status("k1")["contact_id"] == "1234567890"


def test_redis_failing_while_an_engage_error_is_handled_keeps_it_out_of_the_retry() -> None:
    """The retry's exception does not carry the unmasked Engage error it interrupted."""
    task = RecordingTask()

    def redis_down() -> None:
        raise redis.ConnectionError("Connection refused")

    def step(_: Runtime) -> StepOutcome:
        try:
            raise EngageServerError("contact/get", status=503, message=f"failed for {PARAMETER}")
        except EngageServerError:
            redis_down()  # as when Redis fails while the step records the failure
        return Resolved(0)

    with installed(fake_runtime()), pytest.raises(RuntimeError, match=r"^retry$"):
        pipeline._step(task, ctx(), "contact/get", step)
    (options,) = task.retries
    error = options["exc"]
    assert isinstance(error, redis.ConnectionError)
    assert leaked(shown(error)) == []
