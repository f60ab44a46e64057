"""The Engage client: look a contact up, send it a prepared message, over REST or SOAP.

Imports neither Celery nor Redis: the delivery layer hands it a request and gets an answer or a
typed error of :mod:`tasks.core.errors`. :func:`build_client` picks the transport.
"""

from __future__ import annotations

import requests

from tasks.core.settings import EngageSettings
from tasks.engage import http
from tasks.engage.base import Contact, EngageClient
from tasks.engage.http import CallObserver
from tasks.engage.rest import RestEngageClient
from tasks.engage.soap import SoapEngageClient

__all__ = ["CallObserver", "Contact", "EngageClient", "build_client"]


def build_client(
    engage: EngageSettings,
    *,
    connect_timeout: float,
    read_timeout: float,
    session: requests.Session | None = None,
    observe: CallObserver | None = None,
) -> EngageClient:
    """The client ``engage.transport`` asks for, on a new pooled session unless one is given."""
    session = session or http.make_session(
        engage.username, engage.password, base_url=engage.base_url
    )
    transport = SoapEngageClient if engage.transport == "soap" else RestEngageClient
    return transport(
        base_url=engage.base_url,
        session=session,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        observe=observe,
    )
