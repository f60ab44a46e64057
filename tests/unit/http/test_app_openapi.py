"""/openapi.json against the implementation: the same routes, and every answer documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.support.http_client import bearer, new_token

BODY = {"message_id": 23541, "mobile": "+48 505 606 707"}


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a ``$ref`` followed."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    *_, name = ref.split("/")
    return dict(document["components"]["schemas"][name])


def conforms(document: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` fits the (small) JSON Schema subset FastAPI writes for these bodies."""
    schema = resolve(document, schema)
    if "anyOf" in schema:
        return any(conforms(document, option, value) for option in schema["anyOf"])
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
    }
    if kind is not None and not checks[kind](value):
        return False
    if kind == "object":
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        return all(
            conforms(document, properties[k], v) for k, v in value.items() if k in properties
        )
    return True


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute of the application, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def test_the_document_lists_exactly_the_api_routes(client: TestClient) -> None:
    """Every API route is described, and nothing else (the console is not part of the API)."""
    document = client.get("/openapi.json").json()
    routes = {
        (route.path.replace(":path", ""), method.lower())
        for route in api_routes(client.app.routes)  # type: ignore[attr-defined]
        if route.include_in_schema
        for method in route.methods or ()
    }
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == routes
    assert documented == {
        ("/v1/sends", "post"),
        ("/v1/sends/{key}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }


def test_the_send_operation_names_its_header_body_and_security(client: TestClient) -> None:
    """Idempotency-Key required, the body's fields, bearer auth."""
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/sends"]["post"]
    (header,) = operation["parameters"]
    assert (header["name"], header["in"], header["required"]) == ("Idempotency-Key", "header", True)
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {
        "message_id", "mobile", "email", "app_alias", "external_id", "recipient_id",
        "parameters", "priority", "callback_url", "expires_in", "send_by", "create_contact",
    }  # fmt: skip
    assert operation["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_answer_the_api_gives_is_documented_with_its_shape(client: TestClient) -> None:
    """Each status the scenarios produce is in the document for that operation, body and all."""
    sender, reader = new_token("shop", "send"), new_token("dash", "read")
    calls: list[tuple[str, str, Any]] = [
        ("post", "/v1/sends", client.post("/v1/sends", json=BODY, headers=bearer(sender, "a"))),
        ("post", "/v1/sends", client.post("/v1/sends", json=BODY, headers=bearer(sender, "a"))),
        ("post", "/v1/sends", client.post("/v1/sends", json=BODY, headers=bearer(sender))),
        ("post", "/v1/sends", client.post("/v1/sends", json={"x": 1}, headers=bearer(sender, "b"))),
        ("post", "/v1/sends", client.post("/v1/sends", json=BODY, headers=bearer(reader, "c"))),
        ("post", "/v1/sends", client.post("/v1/sends", json=BODY)),
        (
            "post",
            "/v1/sends",
            client.post("/v1/sends", json={**BODY, "email": "a@b.io"}, headers=bearer(sender, "b")),
        ),
        (
            "post",
            "/v1/sends",
            client.post(
                "/v1/sends", json={**BODY, "mobile": "+48505606708"}, headers=bearer(sender, "a")
            ),
        ),
        (
            "post",
            "/v1/sends",
            client.post("/v1/sends", content=b"x" * 70_000, headers=bearer(sender, "d")),
        ),
        ("get", "/v1/sends/{key}", client.get("/v1/sends/a", headers=bearer(reader))),
        ("get", "/v1/sends/{key}", client.get("/v1/sends/zz", headers=bearer(reader))),
        ("get", "/v1/sends/{key}", client.get("/v1/sends/a")),
        ("get", "/healthz", client.get("/healthz")),
        ("get", "/readyz", client.get("/readyz")),
    ]
    document = client.get("/openapi.json").json()
    seen = set()
    for method, path, answer in calls:
        responses = document["paths"][path][method]["responses"]
        code = str(answer.status_code)
        assert code in responses, f"{method} {path} answered {code}, undocumented"
        schema = responses[code]["content"]["application/json"]["schema"]
        assert conforms(document, schema, answer.json()), (method, path, code, answer.json())
        seen.add(answer.status_code)
    assert seen >= {200, 202, 400, 401, 403, 404, 413, 422}
