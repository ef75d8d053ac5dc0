"""Uptally core: wire-format decoding, uptime windows, the LMDB store and its queries."""

__version__ = "0.1.0"
