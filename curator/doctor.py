"""``curator doctor``: will next Monday's send work? Check everything a send needs, send nothing.

One :class:`Check` per row: the config, the state file, each feed, delivery, and the From
domain's SPF and DMARC records. A check that cannot run (no network, no DNS) says "could not
check" as a warning; only a real problem is a ``fail``. Nothing here writes: the state is read
with SQLite's integrity check, the mail server is offered an envelope and then ``RSET`` (never
``DATA``), Postmark is asked who the token belongs to.

The network parts are passed in (an httpx client for feeds and Postmark, a DNS resolver), so
tests point them at servers on 127.0.0.1. Only this module imports dnspython.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from curator.errors import CuratorError

if TYPE_CHECKING:
    import dns.resolver
    import httpx

    from curator.models import Config

Status = Literal["ok", "warn", "fail"]

# Domains no receiver will look up; the From address is still a placeholder.
_PLACEHOLDER_DOMAINS = ("localhost", "example.org", "example.com", "example.net", ".invalid")
# How long the DNS checks may wait in all, when no resolver is passed in.
DNS_LIFETIME = 5.0


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    subject: str  # what was checked: "config", "state", "feed NAME", "delivery", "SPF DOMAIN"
    status: Status
    detail: str
    hint: str = ""


def run_doctor(
    config_path: Path,
    *,
    state_path: Path | None = None,
    env: Mapping[str, str],
    now: datetime | None = None,
    client: httpx.AsyncClient | None = None,
    postmark_client: httpx.Client | None = None,
    resolver: dns.resolver.Resolver | None = None,
) -> list[Check]:
    """Every check, in the order a send meets them. Stops after the config when it is bad."""
    from curator.config import load_config

    now = now or datetime.now(UTC)
    try:
        config = load_config(config_path, env=env, state_path=state_path)
    except CuratorError as exc:
        return [Check("config", "fail", str(exc), exc.hint)]
    feeds = len(config.enabled_feeds)
    checks = [
        Check(
            "config",
            "ok",
            f"{config.path}: {feeds} feed{'s' * (feeds != 1)}, "
            f"{len(config.newsletter.to)} recipient{'s' * (len(config.newsletter.to) != 1)}, "
            f"delivery {config.delivery.method}",
        )
    ]
    if not config.newsletter.to and not env.get("CURATOR_TO"):
        checks.append(
            Check(
                "recipients",
                "warn",
                "no recipients: send will refuse to run",
                "list addresses under newsletter.to or set CURATOR_TO",
            )
        )
    checks.append(check_state(config.state_path))
    checks += check_feeds(config, now, client)
    checks.append(check_delivery(config, postmark_client))
    checks += check_replies(config)
    checks += check_dns(_from_domain(config), resolver)
    return checks


def check_state(path: Path) -> Check:
    """The state file passes SQLite's integrity check (or does not exist yet)."""
    from curator.store import Store

    if not path.exists():
        return Check("state", "ok", f"{path} does not exist yet; the first send creates it")
    problem = Store.integrity_problem(path)
    if problem:
        return Check(
            "state",
            "fail",
            f"{path}: {problem}",
            "restore it from a backup, or move it away to start afresh "
            "(every feed's posts then count as new)",
        )
    return Check("state", "ok", f"{path}: integrity check passed")


def check_feeds(config: Config, now: datetime, client: httpx.AsyncClient | None) -> list[Check]:
    """Each enabled feed: reachable, parses, and how old its last post is."""
    from curator.manage import run_feeds_check
    from curator.normalize import host_name

    enabled = config.enabled_feeds
    if not enabled:
        return [Check("feeds", "warn", "every feed is disabled", "set enabled: true on one")]
    report = run_feeds_check(replace(config, feeds=enabled), now, client=client)
    checks = []
    for row in report.rows:
        feed = row.feed
        # An unnamed feed that gave no title (it failed) is told apart by its URL, not its host.
        untitled = not feed.named and feed.name == host_name(feed.url)
        subject = f"feed {feed.url if untitled else feed.name}"
        age = _age(row.last_post, now)
        if row.failed:
            hint = "; ".join(row.suggestions) or "check the URL with `curator feeds check`"
            checks.append(Check(subject, "fail", row.error or row.status, hint))
        elif row.status == "quiet":
            checks.append(
                Check(
                    subject,
                    "warn",
                    f"{_posts(row.posts)}; last post {age}",
                    "; ".join(row.suggestions),
                )
            )
        elif row.posts == 0:
            checks.append(Check(subject, "warn", "reachable, but it lists no posts"))
        else:
            note = f" ({'; '.join(row.suggestions)})" if row.suggestions else ""
            checks.append(Check(subject, "ok", f"{_posts(row.posts)}; last post {age}{note}"))
    return checks


def _posts(count: int) -> str:
    return f"{count} post{'s' * (count != 1)}"


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "undated"
    days = (now - moment).days
    if days <= 0:
        return "today"
    return f"{days} day{'s' * (days != 1)} ago"


def check_replies(config: Config) -> list[Check]:
    """Each mailbox of replies (when replies are configured): it can be read, reading no
    message. A problem is a warning: a send still goes out without the week's replies."""
    if config.replies is None:
        return []
    from curator.replies import build_sources

    checks = []
    for source in build_sources(config.replies):
        try:
            checks.append(Check("replies", "ok", source.probe()))
        except CuratorError as exc:
            checks.append(Check("replies", "warn", str(exc), exc.hint))
        finally:
            source.close()
    return checks


def check_delivery(config: Config, postmark_client: httpx.Client | None = None) -> Check:
    """Delivery as configured, without sending anything."""
    method = config.delivery.method
    try:
        if method == "smtp":
            from curator.deliver import SmtpSender

            sender = SmtpSender(config.delivery.smtp, config.newsletter.from_addr)
            first = config.newsletter.to[0] if config.newsletter.to else None
            return Check("delivery", "ok", f"smtp: {sender.probe(first)}")
        if method == "postmark":
            from curator.postmark import PostmarkSender

            postmark = PostmarkSender(config.delivery.postmark, postmark_client)
            try:
                return Check("delivery", "ok", f"postmark: {postmark.check_token()}")
            finally:
                postmark.close()
    except CuratorError as exc:
        # A server's refusal may quote the recipient it was asked about: never show it.
        from curator.sending import without_addresses

        hidden = config.newsletter.to
        detail, hint = without_addresses(str(exc), hidden), without_addresses(exc.hint, hidden)
        return Check("delivery", "fail", f"{method}: {detail}", hint)
    return _check_outbox(config.delivery.outbox_dir)


def _check_outbox(folder: Path) -> Check:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return Check(
            "delivery", "fail", f"outbox: {existing} is not writable", "fix its permissions"
        )
    return Check(
        "delivery",
        "ok",
        f"outbox: messages are written to {folder}",
        "",
    )


def _from_domain(config: Config) -> str:
    address = parseaddr(config.newsletter.from_addr)[1]
    return address.rpartition("@")[2].lower()


def check_dns(domain: str, resolver: dns.resolver.Resolver | None = None) -> list[Check]:
    """The From domain's SPF and DMARC TXT records. Missing is a warning (mail may land in
    spam); no answer at all (offline) is "could not check"."""
    if not domain or domain.endswith(_PLACEHOLDER_DOMAINS) or "." not in domain:
        detail = f"{domain or 'no domain'} is a placeholder: receivers cannot look it up"
        hint = "set newsletter.from to an address at a domain you own"
        return [Check("SPF", "warn", detail, hint), Check("DMARC", "warn", detail, hint)]
    return [
        _txt_check(
            "SPF",
            domain,
            "v=spf1",
            resolver,
            f"add a TXT record at {domain} listing your mail server, e.g. "
            '"v=spf1 include:YOUR-PROVIDER -all"',
        ),
        _txt_check(
            "DMARC",
            f"_dmarc.{domain}",
            "v=DMARC1",
            resolver,
            f'add a TXT record at _dmarc.{domain}, e.g. "v=DMARC1; p=none"',
        ),
    ]


def _txt_check(
    kind: str, name: str, prefix: str, resolver: dns.resolver.Resolver | None, advice: str
) -> Check:
    import dns.exception
    import dns.resolver

    subject = f"{kind} {name}"
    try:
        if resolver is None:
            resolver = dns.resolver.Resolver()
            resolver.lifetime = DNS_LIFETIME
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return Check(subject, "warn", "no record: mail may be marked as spam", advice)
    except (dns.exception.DNSException, OSError) as exc:
        reason = type(exc).__name__ if not str(exc) else str(exc).split(";")[0]
        return Check(
            subject,
            "warn",
            f"could not check: no DNS answer ({reason[:120]})",
            "run doctor again where DNS is reachable",
        )
    records = [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]
    found = [r for r in records if r.lower().startswith(prefix.lower())]
    if not found:
        return Check(subject, "warn", "no record: mail may be marked as spam", advice)
    if len(found) > 1:
        return Check(subject, "fail", f"{len(found)} records; receivers ignore them all",
                     "keep one record and remove the others")  # fmt: skip
    return Check(subject, "ok", found[0])
