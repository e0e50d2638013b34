"""The index layer's error hierarchy. The application re-exports it (``assistant.errors``) and
adds its own; the CLI and UI turn any of these into one-line messages that say what to do.

The root lives here, in the lowest layer, so that ``index/`` needs nothing from ``assistant/``
and one ``except AssistantError`` still catches every expected failure.
"""


class AssistantError(Exception):
    """An expected failure whose message tells the user what to do."""

    exit_code = 1


class ConfigError(AssistantError):
    """Settings or arguments that cannot work (bad model name, bad LLM spec, ...)."""

    exit_code = 2


class StoreUnavailableError(AssistantError):
    """The Chroma server cannot be reached, or the store on disk cannot be opened."""


class IndexCorruptError(StoreUnavailableError):
    """The index files under ASSISTANT_HOME (or its vectors) are damaged or not ours; a rebuild
    replaces them."""


class IndexMismatchError(AssistantError):
    """The index was built with another embedding model or chunking than the settings ask for."""

    exit_code = 2


class IndexBusyError(AssistantError):
    """Another sync holds the index lock."""


class EmptyIndexError(AssistantError):
    """Nothing is indexed yet."""


class LoadError(AssistantError):
    """One source (file or URL) could not be turned into an article."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason
