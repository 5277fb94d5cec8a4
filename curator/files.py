"""Writing a file so that a reader never sees half of it: the one ``atomic_write``.

Every file curator writes for a person (outbox messages, the preview, the archive, feeds.yaml,
an OPML export) goes through here. The bytes go to a new temporary file in the target's own
folder (``O_EXCL``, so nothing planted there is opened), are flushed to disk, and the temporary
file is then renamed over the target. The rename replaces whatever entry is at the target,
a symbolic link included: a link planted at an outbox or archive path is replaced by the new
file, never written through to what it points at. Raises :class:`OSError`; each caller maps it
to its own error, since only the caller knows what the file is for.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    before_replace: Callable[[Path], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` in one rename.

    ``mode`` sets the file's permissions (by default the temporary file's private 0600
    stays). ``before_replace`` is called with the finished temporary file just before the
    rename; whatever it raises leaves ``path`` untouched and the temporary file removed.
    """
    folder = path.parent if str(path.parent) else Path()
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        if before_replace is not None:
            before_replace(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
