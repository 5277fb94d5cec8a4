"""The one error tree of curator.

Every failure a user can cause or meet is a subclass of :class:`CuratorError`; the CLI turns
each into one clean line and the contract's exit code. Anything else is a bug::

    CuratorError                 exit 1 unless said otherwise
    ├── ConfigError              exit 2: feeds.yaml or an option is wrong (file, line, key)
    ├── FetchError               one feed could not be fetched (kept as a value per feed)
    ├── ParseError               one feed's body is not a feed (kept as a value per feed)
    ├── RenderError              a template is broken
    ├── DeliveryError            the mail server or outbox refused the message
    ├── ArchiveError             the web archive of sent issues cannot be written
    ├── StoreError               the state file cannot be used
    │   ├── BusyError            another curator run holds the state lock
    │   └── StateFileError       exit 2: an exported state file cannot be read (key, damage)
    └── SourcesError             a feeds command cannot do what was asked (duplicate, no
                                 feed found, no such feed, feeds.yaml changed meanwhile)

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


class FetchError(CuratorError):
    """A feed could not be fetched: network, HTTP status, size or time limits."""


class ParseError(CuratorError):
    """A fetched body is not a feed curator can read."""


class RenderError(CuratorError):
    """A template could not be loaded or rendered."""


class DeliveryError(CuratorError):
    """A message could not be handed to the outbox, the mail server or the mail API."""


class ArchiveError(CuratorError):
    """The archive folder (pages, index, Atom feed) cannot be written."""


class StoreError(CuratorError):
    """The state database cannot be opened, read or written."""


class BusyError(StoreError):
    """Another curator process holds the state lock."""


class StateFileError(StoreError):
    """An exported state file cannot be written or read back: no key, a wrong key, damage."""

    exit_code = 2


class SourcesError(CuratorError):
    """A ``curator feeds`` command cannot do what was asked: the feed is already listed, no
    feed was found, no feed has that name, or feeds.yaml changed while curator edited it."""
