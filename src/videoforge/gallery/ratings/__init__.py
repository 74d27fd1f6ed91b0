"""Likes and dislikes: one rating per user per video, counted on the video."""
