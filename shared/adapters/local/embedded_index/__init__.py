"""The embedded search index (the local engine behind ``SearchIndex``)."""

from shared.adapters.local.embedded_index.index import EmbeddedSearchIndex

__all__ = ["EmbeddedSearchIndex"]
