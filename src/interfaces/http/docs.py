"""API docs page rendered on the server from the OpenAPI schema: no script, no CDN asset."""

# Litestar's bundled Swagger/Redoc/Scalar pages load their assets from a CDN, which firewalled
# networks (and these machines) cannot reach: this page needs nothing but itself.

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem;
       color: #1f2328; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
section.op { border: 1px solid #d0d7de; border-radius: 6px; margin: .8rem 0; padding: .5rem 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; text-transform: uppercase; }
.get { color: #0969da; } .post { color: #1a7f37; } .delete { color: #cf222e; }
.put, .patch { color: #9a6700; }
code, .path { font-family: ui-monospace, monospace; } .path { font-weight: 600; }
.opid { color: #57606a; font-size: .85rem; float: right; }
table { border-collapse: collapse; margin: .4rem 0; } td, th { padding: .15rem .6rem;
        border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
"""


_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")


def _text(value: Any) -> str:
    return escape(str(value)) if value else ""


def _prose(value: Any) -> str:
    """A description's Markdown as HTML: `code` and **strong** spans, blank lines between
    paragraphs (the only Markdown the API's descriptions use)."""
    html = _CODE.sub(r"<code>\1</code>", _text(value))
    html = _STRONG.sub(r"<strong>\1</strong>", html)
    return "</p><p>".join(part.strip() for part in re.split(r"\n\s*\n", html))


def _ref_name(schema: Mapping[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, Mapping):
        return f"list of {_ref_name(items) or 'any'}"
    return str(schema.get("type", ""))


def _content_name(content: Mapping[str, Any] | None) -> str:
    for media in (content or {}).values():
        return _ref_name(media.get("schema"))
    return ""


def _parameters(parameters: list[Mapping[str, Any]]) -> str:
    if not parameters:
        return ""
    rows = "".join(
        f"<tr><td><code>{_text(p.get('name'))}</code></td><td>{_text(p.get('in'))}</td>"
        f"<td>{'required' if p.get('required') else ''}</td>"
        f"<td>{_prose(p.get('description'))}</td></tr>"
        for p in parameters
    )
    return f"<table><tr><th>parameter</th><th>in</th><th></th><th></th></tr>{rows}</table>"


def _responses(responses: Mapping[str, Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{_text(code)}</td><td>{_text(_content_name(r.get('content')))}</td>"
        f"<td>{_prose(r.get('description'))}</td></tr>"
        for code, r in sorted(responses.items())
    )
    return f"<table><tr><th>status</th><th>body</th><th></th></tr>{rows}</table>"


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    body = op.get("requestBody") or {}
    request = _content_name(body.get("content"))
    return (
        f"<section class='op' id='{_text(op.get('operationId'))}'>"
        f"<span class='opid'>{_text(op.get('operationId'))}</span>"
        f"<span class='method {method}'>{method}</span> <span class='path'>{_text(path)}</span>"
        f"<p><strong>{_prose(op.get('summary'))}</strong></p>"
        f"<p>{_prose(op.get('description'))}</p>"
        f"{_parameters(op.get('parameters') or [])}"
        + (f"<p>Request body: <code>{_text(request)}</code></p>" if request else "")
        + f"{_responses(op.get('responses') or {})}</section>"
    )


def _type_name(schema: Mapping[str, Any]) -> str:
    variants = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(variants, list):
        return " | ".join(_type_name(v) for v in variants)
    return _ref_name(schema) or "any"


def _models(schemas: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for name, schema in sorted(schemas.items()):
        required = set(schema.get("required") or ())
        rows = "".join(
            f"<tr><td><code>{_text(field)}</code></td><td>{_text(_type_name(prop))}</td>"
            f"<td>{'required' if field in required else ''}</td>"
            f"<td>{_prose(prop.get('description'))}</td></tr>"
            for field, prop in (schema.get("properties") or {}).items()
        )
        parts.append(
            f"<section class='op' id='model-{_text(name)}'><span class='path'>{_text(name)}</span>"
            f"<p>{_prose(schema.get('description'))}</p><table>{rows}</table></section>"
        )
    return "".join(parts)


def render_docs(openapi_schema: Mapping[str, Any], json_url: str) -> str:
    """The whole page: operations grouped by their first tag, in path order."""
    info = openapi_schema.get("info") or {}
    groups: dict[str, list[str]] = {}
    for path, item in (openapi_schema.get("paths") or {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op:
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append(_operation(path, method, op))
    sections = "".join(
        f"<h2 id='tag-{_text(tag)}'>{_text(tag)}</h2>{''.join(ops)}"
        for tag, ops in sorted(groups.items())
    )
    models = _models((openapi_schema.get("components") or {}).get("schemas") or {})
    title = _text(info.get("title"))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title} <small>{_text(info.get('version'))}</small></h1>"
        f"<p>{_prose(info.get('description'))}</p>"
        f"<p>Machine-readable schema: <a href='{_text(json_url)}'>{_text(json_url)}</a></p>"
        f"{sections}<h2 id='models'>bodies</h2>{models}</body></html>"
    )


class OfflineDocsPlugin(OpenAPIRenderPlugin):
    """Serves the docs page at the OpenAPI root (`/schema`)."""

    def __init__(self, *, path: str = "/") -> None:
        # The base class's default favicon is a CDN link: this page sets none.
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return render_docs(openapi_schema, self.get_openapi_json_route(request)).encode()
