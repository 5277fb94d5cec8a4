"""The one error tree of curator.

Every failure a user can cause or meet is a subclass of :class:`CuratorError`; the CLI turns
each into one clean line and the contract's exit code. Anything else is a bug::

    CuratorError                 exit 1 unless said otherwise
    ├── ConfigError              exit 2: feeds.yaml or an option is wrong (file, line, key)
    ├── ParseError               one feed's body is not a feed (kept as a value per feed)
    ├── RenderError              a template is broken
    ├── DeliveryError            the mail server or outbox refused the message
    ├── ArchiveError             the web archive of sent issues cannot be written
    ├── PreviewError             the preview files cannot be written
    ├── RepliesError             a replies mailbox cannot be read (a value in the report)
    ├── StoreError               the state file cannot be used
    │   ├── BusyError            another curator run holds the state lock
    │   └── StateFileError       exit 2: an exported state file cannot be read (key, damage)
    └── SourcesError             a feeds command cannot do what was asked (duplicate, no
                                 feed found, no such feed, feeds.yaml changed meanwhile)

A feed that cannot be fetched is not an error here: like lemon24/reader, curator keeps each
feed's failure as a value (``FetchResult.error``, ``FeedOutcome.error``) so one bad feed never
aborts the batch, and the run decides what a batch of failures means.

Every error says what to do: a raise passes its own ``hint``, and where it does not, the class's
default hint (below) is the second line the CLI prints.

Third-party exceptions are caught at the boundary of the stage that uses the library and
raised again as the most specific error here, ``raise Mine(...) from exc``.
"""

from __future__ import annotations


class CuratorError(Exception):
    """Root of every error curator reports to a user."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(CuratorError):
    """feeds.yaml, an environment variable or a command-line option is invalid."""

    exit_code = 2
    hint = 'correct it and run again; README.md, "Configuration", lists every key'

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str = "",
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{message}", hint=hint)


class ParseError(CuratorError):
    """A fetched body is not a feed curator can read."""

    hint = "`curator feeds check` looks for the feed behind the address and suggests it"


class RenderError(CuratorError):
    """A template could not be loaded or rendered."""

    hint = "check the templates folder that feeds.yaml names (templates:), or remove the key"


class DeliveryError(CuratorError):
    """A message could not be handed to the outbox, the mail server or the mail API."""

    hint = "`curator doctor` checks the delivery settings without sending"


class ArchiveError(CuratorError):
    """The archive folder (pages, index, Atom feed) cannot be written."""

    hint = "check that archive.dir is a folder you can write, or set archive.enabled: false"


class PreviewError(CuratorError):
    """The preview's files (``issue.html``, ``issue.txt``, ``issue.eml``) cannot be written."""

    hint = "check that the folder is writable, or pass --out DIR"


class RepliesError(CuratorError):
    """A mailbox of replies (IMAP, Maildir, Postmark inbound files) cannot be read. Collection
    keeps it as a value in its report, so a send still goes out."""

    hint = "check the replies section of feeds.yaml (and CURATOR_IMAP_PASSWORD for IMAP)"


class StoreError(CuratorError):
    """The state database cannot be opened, read or written."""

    hint = "`curator doctor` checks the state file; pass --state PATH to use another"


class BusyError(StoreError):
    """Another curator process holds the state lock."""

    hint = "wait for the other curator run to finish, then run again"


class StateFileError(StoreError):
    """An exported state file cannot be written or read back: no key, a wrong key, damage."""

    exit_code = 2
    # The contract asks for one line here, so each message names what to check itself
    # (the key, or the file) instead of a second what-to-do line.
    hint = ""


class SourcesError(CuratorError):
    """A ``curator feeds`` command cannot do what was asked: the feed is already listed, no
    feed was found, no feed has that name, or feeds.yaml changed while curator edited it."""

    hint = "`curator feeds list` shows the feeds as feeds.yaml lists them"
