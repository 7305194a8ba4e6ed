"""neurokd."""
