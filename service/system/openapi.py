"""The served OpenAPI document tells the truth about errors and authentication.

Litestar documents a handler's validation error as ``application/json`` with its own exception shape
(``status_code``/``detail``/``extra``) and applies the global ``BearerToken`` requirement to every operation,
public ones included. Neither is what the service does: every error is an RFC 9457 ``application/problem+json``
body (:mod:`service.problems`) and the public endpoints take no token. :class:`ProblemAwareJsonRenderPlugin`
serves ``/schema/openapi.json`` with that corrected once per application, so clients and contract tests
(schemathesis) check responses against the real contract:

- every 4xx/5xx response any handler documents is a ``Problem`` (``#/components/schemas/Problem``);
- every operation documents ``4XX`` and ``5XX`` as problems (the codes are listed at ``GET /problems/{code}``);
- an operation whose path the access-token middleware skips and whose handler has no guard is public:
  ``security: []``; every other operation documents ``401`` (``not_authenticated``) and ``403`` (``forbidden``);
- a struct declared with ``forbid_unknown_fields`` says ``additionalProperties: false`` (msgspec refuses them);
- a struct's ``__openapi_extra__`` keywords (rules msgspec cannot state on a struct but the service enforces, e.g.
  ``minProperties``) are added to its component;
- the bearer scheme loses the ``name`` Litestar gives it (not allowed on an ``http`` scheme in OpenAPI 3.1).

:class:`DecimalSchemaPlugin` documents ``Decimal`` (money, sizes, prices) as the decimal string msgspec accepts
instead of Litestar's bare ``string``, so an empty or non-numeric string is documented as invalid.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute

from service.problems import MEDIA_TYPE

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = [
    "DECIMAL_PATTERN",
    "POSITIVE_DECIMAL_PATTERN",
    "PROBLEM_SCHEMA",
    "DecimalSchemaPlugin",
    "ProblemAwareJsonRenderPlugin",
    "api_structs",
    "document_problems",
]

# A finite decimal number as text: what msgspec decodes into Decimal, without NaN/Infinity (msgspec refuses
# exponents that do not fit a 64-bit integer, hence at most 18 digits).
DECIMAL_PATTERN: Final = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,18})?$"

# A finite decimal greater than zero: DECIMAL_PATTERN without a minus sign and with a non-zero significand digit.
POSITIVE_DECIMAL_PATTERN: Final = r"^\+?(\d*[1-9]\d*(\.\d*)?|\d*\.\d*[1-9]\d*)([eE][+-]?\d{1,18})?$"

_METHODS: Final = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable; GET /problems/{code} documents it.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "Relative URI of the problem type: /problems/{code}."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string", "description": "Quote it to find the request in the server logs."},
        "errors": {
            "type": "array",
            "description": "Validation problems: one entry per bad field (`field`, `message`, `source`); other "
            "problems may list their own issues here (e.g. `line`/`column` of a profile).",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "source": {"type": ["string", "null"]},
                },
            },
        },
    },
    # Areas add context attributes (e.g. `retry_after`, `rule_id`) next to the standard members.
    "additionalProperties": True,
}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}}


def _public_operations(app: Litestar, public_paths: Iterable[str]) -> set[tuple[str, str]]:
    """(path, method) of handlers the token middleware skips and that carry no guard of their own."""
    patterns = [re.compile(pattern) for pattern in public_paths]
    public: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not any(p.search(route.path) for p in patterns):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_guards():
                public.update((route.path_format, method.lower()) for method in handler.http_methods)
    return public


def _struct_types(root: type[msgspec.Struct] = msgspec.Struct) -> Iterator[type[msgspec.Struct]]:
    for sub in root.__subclasses__():
        yield sub
        yield from _struct_types(sub)


def _component_names(struct: type[msgspec.Struct]) -> tuple[str, str]:
    # Litestar names a component after the class, or after its dotted path when two classes share the name.
    return struct.__name__, f"{struct.__module__}.{struct.__qualname__}".replace(".", "_")


def _properties(struct: type[msgspec.Struct]) -> set[str]:
    names = {field.encode_name for field in msgspec.structs.fields(struct)}
    tag_field = struct.__struct_config__.tag_field
    return names | {tag_field} if tag_field else names


def _structs_of(
    schemas: dict[str, Any], structs: Iterable[type[msgspec.Struct]]
) -> dict[str, list[type[msgspec.Struct]]]:
    """Component name -> the structs it can stand for: same name and exactly the component's properties.

    The shape matters, not only the name: any struct of the process counts (a test module's open ``Order`` as
    well as the API's closed one), so matching by name alone made the document depend on what was imported.
    """
    found: dict[str, list[type[msgspec.Struct]]] = {}
    for struct in structs:
        for name in _component_names(struct):
            component = schemas.get(name)
            if (
                isinstance(component, dict)
                and component.get("type") == "object"
                and set(component.get("properties", {})) == _properties(struct)
            ):
                found.setdefault(name, []).append(struct)
    return found


def api_structs() -> list[type[msgspec.Struct]]:
    """Every msgspec struct class of the process (:func:`document_problems` picks the components' own)."""
    return list(_struct_types())


def document_problems(
    document: dict[str, Any], public: set[tuple[str, str]], structs: Iterable[type[msgspec.Struct]] = ()
) -> dict[str, Any]:
    """A copy of ``document`` with problem+json errors and per-operation security (see the module docs)."""
    result = copy.deepcopy(document)
    schemas: dict[str, Any] = result.setdefault("components", {}).setdefault("schemas", {})
    for name, candidates in _structs_of(schemas, structs).items():
        component = schemas[name]
        # Only when every struct the component can stand for says so.
        if all(c.__struct_config__.forbid_unknown_fields for c in candidates):
            component.setdefault("additionalProperties", False)
        extras = [c.__dict__.get("__openapi_extra__") for c in candidates]
        if isinstance(extras[0], dict) and all(extra == extras[0] for extra in extras):
            component.update(copy.deepcopy(extras[0]))
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    # Litestar's JWT backend gives its `http` scheme an apiKey-style `name`, which OpenAPI 3.1 forbids there.
    for scheme in result["components"].get("securitySchemes", {}).values():
        if isinstance(scheme, dict) and scheme.get("type") == "http":
            scheme.pop("name", None)
            scheme.pop("in", None)
    for path, item in result.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status[:1] in {"4", "5"} and isinstance(response, dict):
                    description = response.get("description") or "Problem"
                    responses[status] = _problem_response(description)
            if (path, method) in public:
                operation["security"] = []
            else:
                responses.setdefault("401", _problem_response("Not authenticated: missing, invalid or revoked token"))
                responses.setdefault("403", _problem_response("Authenticated, but not allowed to do this"))
            responses.setdefault("4XX", _problem_response("Any other client error; see GET /problems/{code}"))
            responses.setdefault("5XX", _problem_response("Unexpected error or unavailable dependency"))
    return result


class ProblemAwareJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` as :func:`document_problems` corrects it (computed once per app)."""

    def __init__(self, public_paths: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._public_paths = list(public_paths)
        self._document: dict[str, Any] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Render the corrected document as JSON."""
        if self._document is None:
            public = _public_operations(request.app, self._public_paths)
            self._document = document_problems(openapi_schema, public, api_structs())
        return self.render_json(request, self._document)


class DecimalSchemaPlugin(OpenAPISchemaPlugin):
    """``Decimal`` is a string matching :data:`DECIMAL_PATTERN` (constrained decimals keep Litestar's schema)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """Plain ``Decimal`` fields and parameters."""
        kwarg = field_definition.kwarg_definition
        constrained = isinstance(kwarg, ParameterKwarg | BodyKwarg) and kwarg.is_constrained
        return field_definition.annotation is Decimal and not constrained

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """The decimal-string schema."""
        return Schema(type=OpenAPIType.STRING, pattern=DECIMAL_PATTERN, examples=["1.5"])
