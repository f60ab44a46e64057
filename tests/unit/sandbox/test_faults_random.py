"""The sandbox's random faults for chaos runs: each share lands on its own fault."""

from __future__ import annotations

from tasks.sandbox.faults import BAD_CONTACT_IDS, CONTACT_ID, HTML, REDIRECT, STATUS, RandomFaults

PLAN = RandomFaults(server_error=0.1, redirect=0.1, html=0.1, bad_contact_id=0.1)


def first(options: tuple[str, ...]) -> str:
    """A chooser that always takes the first option."""
    return options[0]


def test_each_share_of_the_roll_is_its_fault() -> None:
    """Rolls fall on 5xx, then redirect, then HTML, then a bad contact id, then nothing."""
    picked = [PLAN.pick(roll, "contact/get", first) for roll in (0.05, 0.15, 0.25, 0.35, 0.45)]
    assert [f.kind if f else None for f in picked] == [STATUS, REDIRECT, HTML, CONTACT_ID, None]
    assert picked[1] is not None
    assert picked[1].status == 302
    assert picked[3] is not None
    assert picked[3].argument == BAD_CONTACT_IDS[0]


def test_bad_contact_ids_only_answer_lookups() -> None:
    """On sendSingle the bad-id share is no fault: there is no contactId to spoil."""
    assert PLAN.pick(0.35, "message/sendSingle", first) is None
