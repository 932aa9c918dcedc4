"""One package per outside system: HTTP client, webhook verification and parsing, payload <-> domain mapping.
A channel never imports another channel."""
