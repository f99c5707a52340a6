"""Approval API function (API Gateway, Cognito user-pool authorizer).

* ``GET /approvals?token=...`` (no authorizer): a small page showing the
  pending identity's faces (presigned S3 URLs) and the form for the action the
  link grants. The page signs the approver in with the Cognito Hosted UI
  (implicit grant) and posts the decision with the ID token.
* ``POST /decisions`` (Cognito authorizer): ``{"token", "action", "details"?}``
  -> ``ApprovalService.decide_with_token`` -> ``SendTaskSuccess``.

The link token is HMAC-signed and single use (:mod:`core.tokens`); the Cognito
identity says who decided (recorded as the actor in the audit log).
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

from core.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    StoreLensError,
    TokenError,
    ValidationError,
)
from core.models import CustomerDetails
from core.ports import Decision, DecisionAction
from infra.functions.runtime import log_json, services

_STATUS = (
    (AuthError, 401),
    (TokenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationError, 400),
)


def _response(status: int, body: Any, content_type: str = "application/json") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": content_type,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
        "body": text,
    }


def _error(exc: StoreLensError) -> dict[str, Any]:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    return _response(status, {"error": type(exc).__name__, "message": str(exc)})


def _actor(event: dict[str, Any]) -> str:
    """The Cognito user: from the API Gateway authorizer, else by verifying the header."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    if claims:
        return str(claims.get("cognito:username") or claims.get("email") or claims.get("sub"))
    verifier = services().token_verifier
    header = (event.get("headers") or {}).get("Authorization") or (event.get("headers") or {}).get(
        "authorization", ""
    )
    if verifier is None or not header:
        raise AuthError("sign in first (Cognito ID token required)")
    identity = verifier.verify(header.removeprefix("Bearer ").strip(), token_use="id")
    return identity.username


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    method = event.get("httpMethod", "GET")
    path = event.get("resource") or event.get("path") or ""
    try:
        if method == "GET" and path.endswith("/approvals"):
            token = (event.get("queryStringParameters") or {}).get("token", "")
            return _response(200, _page(token), "text/html; charset=utf-8")
        if method == "POST" and path.endswith("/decisions"):
            return _decide(event)
        return _response(404, {"error": "NotFound", "message": f"no route {method} {path}"})
    except StoreLensError as exc:
        log_json(msg="approval api error", error=type(exc).__name__, reason=str(exc))
        return _error(exc)


def _decide(event: dict[str, Any]) -> dict[str, Any]:
    actor = _actor(event)
    try:
        body = json.loads(event.get("body") or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationError("the request body is not JSON") from exc
    if not isinstance(body, dict) or not body.get("token") or not body.get("action"):
        raise ValidationError("send {'token': ..., 'action': ...}")
    details = None
    if body.get("details") is not None:
        raw = body["details"]
        if not isinstance(raw, dict):
            raise ValidationError("details must be an object")
        allowed = {"name", "email", "loyalty_id", "consent", "notes"}
        if set(raw) - allowed:
            raise ValidationError(f"unknown detail field(s): {', '.join(sorted(set(raw) - allowed))}")
        details = CustomerDetails(**raw)
    decision = Decision(action=DecisionAction.parse(str(body["action"])), actor=actor, details=details)
    claims = services().approvals.decide_with_token(str(body["token"]), decision)
    log_json(msg="decision submitted", pending_id=claims.pending_id, action=decision.action, actor=actor)
    return _response(202, {"status": "submitted", "pending_id": claims.pending_id, "action": decision.action})


def _page(token: str) -> str:
    svc = services()
    claims = svc.approvals.verify_link(token)
    pending = svc.approvals.get(claims.pending_id)
    faces = svc.approvals.faces_of(claims.pending_id)[:6]
    images = "".join(
        f'<img alt="face" width="160" src="{html.escape(svc.blobs.url(f.crop_key, 900) or "")}">'
        for f in faces
        if f.crop_key
    )
    fields = ""
    if claims.action == "approve":
        fields = (
            '<label>Name <input name="name" required></label>'
            '<label>E-mail <input name="email" type="email"></label>'
            '<label>Loyalty id <input name="loyalty_id"></label>'
            '<label><input name="consent" type="checkbox" required> The customer consented</label>'
        )
    hosted_ui = os.environ.get("COGNITO_HOSTED_UI", "")
    client_id = svc.settings.cognito_client_id
    verb = html.escape(claims.action.replace("_", " "))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StoreLens approval</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto}}
label{{display:block;margin:.5rem 0}} img{{margin:.25rem;border-radius:.5rem}}</style></head>
<body><h1>{html.escape(pending.kind.value.title())} person: {verb}</h1>
<p>Seen {pending.face_count} time(s); last at {pending.last_seen_at:%Y-%m-%d %H:%M} UTC.</p>
<div>{images}</div>
<form id="f">{fields}<button type="submit">Confirm: {verb}</button></form>
<p id="out" role="status"></p>
<script>
const token = {json.dumps(token)}, action = {json.dumps(claims.action)};
const hosted = {json.dumps(hosted_ui)}, client = {json.dumps(client_id)};
const idToken = new URLSearchParams(location.hash.slice(1)).get("id_token");
if (!idToken && hosted) {{
  const back = location.origin + location.pathname + "?token=" + encodeURIComponent(token);
  location.href = hosted + "/login?response_type=token&scope=openid+email&client_id=" + client
    + "&redirect_uri=" + encodeURIComponent(back);
}}
document.getElementById("f").onsubmit = async (e) => {{
  e.preventDefault();
  const fd = new FormData(e.target);
  const body = {{token, action}};
  if (action === "approve") body.details = {{name: fd.get("name"), email: fd.get("email") || null,
    loyalty_id: fd.get("loyalty_id") || null, consent: fd.get("consent") === "on"}};
  const r = await fetch(location.pathname.replace(/approvals$/, "decisions"), {{method: "POST",
    headers: {{"Content-Type": "application/json", "Authorization": idToken || ""}},
    body: JSON.stringify(body)}});
  document.getElementById("out").textContent = r.ok ? "Thank you, recorded." : (await r.json()).message;
}};
</script></body></html>"""
