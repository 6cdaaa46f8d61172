"""tryon package."""
