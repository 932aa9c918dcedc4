"""TikTok Shop: the Partner API client, OAuth, webhooks and the mapping of TikTok's payloads to our domain."""
