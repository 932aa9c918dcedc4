"""Local emulators of the outside world (TikTok Shop, Shopify, POS). Never imports the product."""
