"""shopbridge: operations hub for TikTok Shop merchants."""

__version__ = "0.1.0"
