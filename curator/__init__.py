"""curator: the writers you learn from, in one well-made weekly email.

The package is a pipeline; each module is one stage and nothing flows backwards::

    config -> fetch -> parse -> select -> render -> deliver
                      store (beside them)      cli (on top)

Importing this package is cheap on purpose: ``curator --version`` must not pay for
httpx, feedparser or jinja2. The heavy stages are imported where they are used.
"""

__version__ = "0.1.0"
HOMEPAGE = "https://github.com/curator-digest/curator"

__all__ = ["HOMEPAGE", "__version__"]
