"""Playlists and Watch later: ordered lists of videos a user keeps, public, unlisted or
private, played one after another on the watch page."""
