"""``engage-sms tokens``: the token printed once, last; listed without it; revoked at once."""

from __future__ import annotations

import pytest

from tasks.cli.main import main
from tasks.delivery.runtime import Runtime
from tasks.http.services import current_services


def test_create_prints_the_token_last_and_list_never_shows_it(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last line authenticates; ``list`` shows name and scope, not the token or its secret."""
    assert main(["tokens", "create", "shop", "--scope", "send", "--daily-cap", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    token_text = out[-1]
    token = current_services().tokens.authenticate(token_text)
    assert token is not None
    assert (token.name, token.scope, token.daily_cap) == ("shop", "send", 500)
    assert main(["tokens", "list"]) == 0
    listing = capsys.readouterr().out
    assert "shop" in listing
    assert "send" in listing
    assert token_text not in listing
    assert token.callback_secret not in listing
    stored = [str(v) for v in runtime.redis.hvals(current_services().keys.token(token.id))]
    assert not any(token_text in value for value in stored)


def test_revoke_ends_the_token(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """A revoked token no longer authenticates; revoking an unknown name exits 1."""
    main(["tokens", "create", "shop", "--scope", "operate"])
    token_text = capsys.readouterr().out.splitlines()[-1]
    assert main(["tokens", "revoke", "shop"]) == 0
    assert current_services().tokens.authenticate(token_text) is None
    assert main(["tokens", "revoke", "shop"]) == 1


def test_a_name_is_used_once(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """Creating a second token of the same name exits 2 and keeps the first."""
    assert main(["tokens", "create", "shop", "--scope", "send"]) == 0
    assert main(["tokens", "create", "shop", "--scope", "read"]) == 2
    (token,) = current_services().tokens.tokens()
    assert token.scope == "send"
