"""shopbridge: operations hub for TikTok Shop merchants."""
