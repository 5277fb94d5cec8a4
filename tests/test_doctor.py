"""`curator doctor`: every check against real parts on 127.0.0.1 (an aiosmtpd server with a
login, a DNS server answering TXT records, a feed server), and nothing is ever sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.resolver
import httpx
import pytest
import respx
from typer.testing import CliRunner

from conftest import FeedServer, Item, free_port, rss, utc, write_config
from curator.cli import app
from curator.doctor import Check, check_dns, check_state, run_doctor
from curator.store import Store
from mail_kit import Tls, mail_server, make_tls

NOW = utc("2026-11-26T08:00:00Z")
LOGIN = ("digest@news.test", "right horse battery")


def _zone_server(records: dict[str, list[str]]) -> Any:
    """A DNS server on 127.0.0.1 (dnslib) answering TXT queries from ``records``."""
    from dnslib import QTYPE, RCODE, RR, TXT
    from dnslib.server import BaseResolver, DNSServer

    class Zone(BaseResolver):  # type: ignore[misc]  # dnslib ships no type information
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            if name not in records:
                reply.header.rcode = RCODE.NXDOMAIN
            elif request.q.qtype == QTYPE.TXT:
                for text in records[name]:
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(text), ttl=60))
            return reply

    port = free_port()
    server = DNSServer(Zone(), port=port, address="127.0.0.1")
    server.start_thread()
    return server, port


@pytest.fixture
def dns_zone() -> Iterator[tuple[dict[str, list[str]], dns.resolver.Resolver]]:
    """Records the test fills in, and a dnspython resolver that asks only the local server."""
    records: dict[str, list[str]] = {}
    server, port = _zone_server(records)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = 3.0
    try:
        yield records, resolver
    finally:
        server.stop()


def offline_resolver() -> dns.resolver.Resolver:
    """A resolver pointed at a port where no DNS server listens."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = free_port()
    resolver.lifetime = 1.0
    return resolver


def smtp_config(
    folder: Path, port: int, feed_url: str, *, security: str = "none", domain: str = "news.test"
) -> Path:
    return write_config(
        folder,
        f"newsletter:\n  from: 'News <digest@{domain}>'\n  to: [reader@news.test]\n"
        "delivery:\n  method: smtp\n"
        f"  smtp: {{host: 127.0.0.1, port: {port}, security: {security}, "
        f"username: '{LOGIN[0]}', timeout: 5}}\n"
        f"fetch: {{retries: 0, timeout: 5}}\nfeeds:\n  - {{name: Good, url: '{feed_url}'}}\n",
    )


def by_subject(checks: list[Check]) -> dict[str, Check]:
    return {c.subject.split()[0] if c.subject.startswith(("SPF", "DMARC")) else c.subject: c
            for c in checks}  # fmt: skip


@pytest.fixture
def good_feed(feed_server: FeedServer) -> str:
    item = Item("A post", "https://news.test/a", utc("2026-11-24T09:00:00Z"))
    return feed_server.add("/good.xml", rss([item]))


def test_smtp_login_accepted_and_nothing_delivered(
    tmp_path: Path, good_feed: str, dns_zone: Any
) -> None:
    """With the right password every row is ok, and the server receives no message at all."""
    records, resolver = dns_zone
    records["news.test"] = ["v=spf1 ip4:127.0.0.1 -all", "google-site-verification=abc"]
    records["_dmarc.news.test"] = ["v=DMARC1; p=quarantine"]
    with mail_server(login=LOGIN) as box:
        config = smtp_config(tmp_path, box.port, good_feed)
        checks = run_doctor(
            config, env={"CURATOR_SMTP_PASSWORD": LOGIN[1]}, now=NOW, resolver=resolver
        )
        rows = by_subject(checks)
        assert {c.status for c in checks} == {"ok"}, checks
        assert "logged in as digest@news.test" in rows["delivery"].detail
        assert "recipient accepted" in rows["delivery"].detail
        assert rows["feed Good"].detail.startswith("1 post; last post 1 day ago")
        assert rows["SPF"].detail == "v=spf1 ip4:127.0.0.1 -all"
        assert rows["DMARC"].detail == "v=DMARC1; p=quarantine"
        assert box.messages == [] and box.data_seen == 0
        assert "reader@news.test" not in repr(checks)  # the reader is never named


def test_smtp_wrong_password_fails_and_the_cli_exits_1(
    tmp_path: Path, good_feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused login is a failed delivery row with what to fix; doctor exits 1; no mail."""
    monkeypatch.setenv("CURATOR_SMTP_PASSWORD", "pw-that-is-wrong")
    with mail_server(login=LOGIN) as box:
        # A .invalid From domain is never looked up: this test asks no DNS server.
        config = smtp_config(tmp_path, box.port, good_feed, domain="news.invalid")
        result = CliRunner().invoke(app, ["doctor", "--config", str(config)])
        assert result.exit_code == 1, result.output
        delivery = next(line for line in result.stdout.splitlines() if line.startswith("delivery"))
        assert delivery.split("\t")[1] == "fail"
        assert "refused the login" in delivery and "CURATOR_SMTP_PASSWORD" in delivery
        assert (
            "pw-that-is-wrong" not in result.stdout + result.stderr
        )  # the password is never shown
        assert box.messages == [] and box.data_seen == 0


def test_smtp_starttls_is_checked(
    tmp_path: Path, good_feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS with a certificate the system trusts passes; the row says TLS was used."""
    tls: Tls = make_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    with mail_server(starttls=tls.server, login=LOGIN) as box:
        config = smtp_config(tmp_path, box.port, good_feed, security="starttls")
        checks = run_doctor(
            config, env={"CURATOR_SMTP_PASSWORD": LOGIN[1]}, now=NOW, resolver=offline_resolver()
        )
        delivery = by_subject(checks)["delivery"]
        assert delivery.status == "ok" and "STARTTLS" in delivery.detail, delivery
        assert box.messages == []


def test_a_refused_sender_fails_the_delivery_row(tmp_path: Path, good_feed: str) -> None:
    """A server that will not take mail from newsletter.from fails the row, naming the sender."""
    from mail_kit import Mailbox

    with mail_server(Mailbox(refuse_sender="553 not your address")) as box:
        config = smtp_config(tmp_path, box.port, good_feed)
        config.write_text(config.read_text().replace("    username", "    xusername"))
        config.write_text(config.read_text().replace(f", username: '{LOGIN[0]}'", ""))
        delivery = by_subject(run_doctor(config, env={}, now=NOW, resolver=offline_resolver()))
        assert delivery["delivery"].status == "fail"
        assert "refuses the sender digest@news.test" in delivery["delivery"].detail


def test_a_refused_recipient_is_not_named_in_the_delivery_row(
    tmp_path: Path, good_feed: str
) -> None:
    """A server that refuses the first recipient and quotes the address back: the row fails
    without repeating the address (doctor's output may be a public log)."""
    from mail_kit import Mailbox

    refusal = "550 5.1.1 <reader@news.test>: Recipient address rejected"
    with mail_server(Mailbox(refuse={"reader@news.test": refusal})) as box:
        config = smtp_config(tmp_path, box.port, good_feed)
        config.write_text(config.read_text().replace(f", username: '{LOGIN[0]}'", ""))
        delivery = by_subject(run_doctor(config, env={}, now=NOW, resolver=offline_resolver()))
    row = delivery["delivery"]
    assert row.status == "fail" and "refuses the first recipient" in row.detail
    assert "reader@news.test" not in row.detail + row.hint
    assert "a recipient" in row.detail


@pytest.mark.parametrize(
    ("records", "spf", "dmarc"),
    [
        ({"news.test": ["v=spf1 -all"], "_dmarc.news.test": ["v=DMARC1; p=none"]}, "ok", "ok"),
        ({"news.test": ["other=1"]}, "warn", "warn"),
        ({}, "warn", "warn"),
        ({"news.test": ["v=spf1 a -all", "v=spf1 mx -all"]}, "fail", "warn"),
    ],
    ids=["both", "none-at-domain", "nxdomain", "two-spf"],
)
def test_spf_and_dmarc_rows(
    dns_zone: Any, records: dict[str, list[str]], spf: str, dmarc: str
) -> None:
    """SPF and DMARC TXT records, as a local DNS server answers them, give these statuses."""
    zone, resolver = dns_zone
    zone.update(records)
    rows = check_dns("news.test", resolver)
    assert [r.status for r in rows] == [spf, dmarc], rows


def test_no_dns_says_could_not_check() -> None:
    """Without a DNS answer both rows warn "could not check"; nothing raises."""
    rows = check_dns("news.test", offline_resolver())
    assert [r.status for r in rows] == ["warn", "warn"]
    assert all(r.detail.startswith("could not check") for r in rows), rows


def test_placeholder_from_domain_is_a_warning_without_lookups() -> None:
    """example.org and localhost are not looked up; the rows say to set a real From."""
    rows = check_dns("example.org", offline_resolver())
    assert [r.status for r in rows] == ["warn", "warn"]
    assert "newsletter.from" in rows[0].hint


def test_state_integrity(tmp_path: Path) -> None:
    """A sound state passes, a missing one is fine, a damaged one fails; nothing is created."""
    path = tmp_path / "state.db"
    assert check_state(path).status == "ok" and not path.exists()
    with Store.open(path):
        pass
    assert check_state(path).status == "ok"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 500)
    assert check_state(junk).status == "fail"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    assert check_state(other).status == "fail"


def test_damaged_state_page_fails_the_integrity_check(tmp_path: Path) -> None:
    """A state file with an overwritten page fails PRAGMA integrity_check."""
    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 2 + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    assert check_state(path).status == "fail"


@respx.mock
def test_postmark_token_checked_with_a_read_only_call(tmp_path: Path) -> None:
    """The token is checked with GET /server; a good one passes, a refused one fails."""
    route = respx.get("https://api.postmarkapp.com/server").mock(
        side_effect=lambda request: httpx.Response(
            200 if request.headers["X-Postmark-Server-Token"] == "good" else 401,
            json={"Name": "Weekly"} if request.headers["X-Postmark-Server-Token"] == "good"
            else {"ErrorCode": 10, "Message": "Bad or missing Server API token."},
        )
    )  # fmt: skip
    config = write_config(
        tmp_path,
        "newsletter: {from: 'a@example.org'}\ndelivery: {method: postmark}\n"
        "feeds:\n  - {url: 'https://feeds.example/a', enabled: false}\n",
    )
    good = by_subject(run_doctor(config, env={"CURATOR_POSTMARK_TOKEN": "good"}, now=NOW))
    assert good["delivery"].status == "ok" and "Weekly" in good["delivery"].detail
    bad = by_subject(run_doctor(config, env={"CURATOR_POSTMARK_TOKEN": "bad"}, now=NOW))
    assert bad["delivery"].status == "fail" and "refused the token" in bad["delivery"].detail
    assert route.call_count == 2
    assert all(call.request.method == "GET" for call in route.calls)


def test_bad_config_is_one_failed_row(tmp_path: Path) -> None:
    """A config that does not load is the only row, failed, with its file:line message."""
    config = write_config(tmp_path, "feeds:\n  - url: htp://x\n")
    result = CliRunner().invoke(app, ["--config", str(config), "doctor"])
    assert result.exit_code == 1
    (row,) = result.stdout.splitlines()[1:]
    assert row.startswith("config\tfail\t") and "feeds.yaml:2" in row


def test_an_unreachable_feed_fails(tmp_path: Path, feed_server: FeedServer) -> None:
    """A feed answering 404 is a failed row; a stale one is a warning."""
    old = Item("Old", "https://news.test/old", utc("2025-01-01T09:00:00Z"))
    stale = feed_server.add("/stale.xml", rss([old]))
    config = write_config(
        tmp_path,
        "fetch: {retries: 0, timeout: 5}\nfeeds:\n"
        f"  - {{name: Gone, url: '{feed_server.url('/gone.xml')}'}}\n"
        f"  - {{name: Stale, url: '{stale}'}}\n",
    )
    rows = by_subject(run_doctor(config, env={}, now=NOW, resolver=offline_resolver()))
    assert rows["feed Gone"].status == "fail"
    assert rows["feed Stale"].status == "warn" and "days ago" in rows["feed Stale"].detail


def test_unnamed_feeds_are_told_apart_by_title_or_url(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Feeds listed by bare URL on one host: a good one is named by its own title, a failing
    one by its URL, never all by the host alone."""
    post = Item("A post", "https://news.test/a", utc("2026-11-24T09:00:00Z"))
    good = feed_server.add("/beta.xml", rss([post], title="Beta Blog"))
    gone = feed_server.url("/nope.xml")
    config = write_config(
        tmp_path, f"fetch: {{retries: 0, timeout: 5}}\nfeeds:\n  - '{good}'\n  - '{gone}'\n"
    )
    rows = {c.subject: c for c in run_doctor(config, env={}, now=NOW, resolver=offline_resolver())}
    assert rows["feed Beta Blog"].status == "ok"
    assert rows[f"feed {gone}"].status == "fail"
    assert "feed 127.0.0.1" not in rows


def test_replies_mailboxes_are_checked_as_warnings(tmp_path: Path, good_feed: str) -> None:
    """With replies configured, each mailbox is a row: a Maildir that is there is ok, one that
    is not is a warning (a send still goes out), and nothing is read from it."""
    (tmp_path / "box" / "new").mkdir(parents=True)
    (tmp_path / "box" / "cur").mkdir()
    config = write_config(
        tmp_path,
        "fetch: {retries: 0, timeout: 5}\n"
        f"feeds:\n  - {{name: Good, url: '{good_feed}'}}\n"
        "replies: {address: reflect@news.test, maildir: box, postmark_inbound: hooks}\n",
    )
    rows = run_doctor(config, env={}, now=NOW, resolver=offline_resolver())
    replies = [c for c in rows if c.subject == "replies"]
    assert [c.status for c in replies] == ["ok", "warn"]
    assert "a Maildir" in replies[0].detail and "no such folder" in replies[1].detail
    assert "webhook" in replies[1].hint and "IMAP" not in replies[1].hint
