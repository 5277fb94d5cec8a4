"""Checks shared by the hardening tests: is this HTML inert, is this message's header set intact."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from html.parser import HTMLParser

FORBIDDEN_TAGS = frozenset(
    {
        "script", "iframe", "object", "embed", "form", "frame", "frameset", "applet", "base",
        "input", "button", "textarea",
    }
)  # fmt: skip
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "poster"})
SAFE_SCHEMES = ("http://", "https://", "mailto:")


class _Auditor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        if tag == "meta":
            values = {k: (v or "") for k, v in attrs}
            if values.get("http-equiv", "").lower() == "refresh":
                self.problems.append("<meta http-equiv=refresh>")
        for name, raw in attrs:
            value = raw or ""
            if name.startswith("on"):
                self.problems.append(f"event handler {name}=")
            if name == "style" and re.search(
                r"(?i)expression\s*\(|url\s*\(\s*['\"]?\s*(javascript|vbscript|data):", value
            ):
                self.problems.append(f"active style {value[:40]!r}")
            if name in URL_ATTRIBUTES:
                cleaned = re.sub(r"[\x00-\x20]", "", value).lower()
                if not cleaned.startswith(SAFE_SCHEMES):
                    self.problems.append(f"{name}={value[:60]!r}")

    handle_startendtag = handle_starttag


def html_problems(html: str) -> list[str]:
    """Everything active in ``html``: scripts, frames, forms, handlers, non-http(s) links."""
    auditor = _Auditor()
    auditor.feed(html)
    auditor.close()
    return auditor.problems


EXPECTED_HEADERS = {
    "from", "to", "subject", "date", "message-id", "list-id", "auto-submitted",
    "x-auto-response-suppress",
    "mime-version", "content-type",
}  # fmt: skip


def header_problems(raw: bytes, *, unsubscribe: bool = False) -> list[str]:
    """Headers of ``raw`` that are missing, doubled or unexpected."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    expected = set(EXPECTED_HEADERS)
    if unsubscribe:
        expected |= {"list-unsubscribe", "list-unsubscribe-post"}
    names = [k.lower() for k in message]
    problems = [f"doubled {n}" for n in set(names) if names.count(n) > 1]
    problems += [f"unexpected {n}" for n in set(names) - expected]
    problems += [f"missing {n}" for n in expected - set(names) if n != "list-unsubscribe-post"]
    return problems


def message_parts(raw: bytes) -> tuple[str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def squash(text: str) -> str:
    return " ".join(text.split())
