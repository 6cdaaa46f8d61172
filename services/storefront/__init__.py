"""Storefront: the HTTP/JSON API over the three services and the fitting-room page."""
