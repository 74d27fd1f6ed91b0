"""Thumbnails chosen by owners: one of the pipeline's candidates, or an uploaded image
(validated and re-encoded here, never served as sent)."""
