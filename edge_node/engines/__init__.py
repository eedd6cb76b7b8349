"""OCR engines: each module has a key, a config class and an engine class; the registry builds them."""
