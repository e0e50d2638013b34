"""Every expected failure, in one hierarchy rooted at :class:`AssistantError`.

The index layer defines the root and its own errors (``index/errors.py``); this module
re-exports them so callers of the application import errors from one place, and adds the
errors that only the question-answering side raises.
"""

from index.errors import (
    AssistantError,
    ConfigError,
    EmptyIndexError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    LoadError,
    StoreUnavailableError,
)

__all__ = [
    "AssistantError",
    "BadQuestionError",
    "ConfigError",
    "EmptyIndexError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMismatchError",
    "LoadError",
    "StoreUnavailableError",
]


class BadQuestionError(AssistantError):
    """The question cannot be asked as given (empty, not text)."""

    exit_code = 2
