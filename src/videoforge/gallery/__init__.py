"""The Gallery service: listing, search, metadata, uploads, playback URLs and views.

One file per concern:

- ``models.py`` tables; ``schemas.py`` wire format; ``access.py`` who may see/change what
- ``service.py`` one video's rules (read, import, edit, delete); ``search.py`` listings
- ``uploads.py`` presigned uploads and multipart, ``confirm.py`` + ``sniff.py`` confirm;
  ``sweep.py`` their clean-up
- ``playback.py`` tokens and stream URLs, ``manifests.py`` the signed playlists, DASH
  manifest and text tracks it serves; ``views.py`` view counting
- ``events.py`` the job-events consumer; ``api.py`` video routes and the shared
  dependencies, ``stream_api.py`` and ``upload_api.py`` the others; ``app.py`` the app;
  ``main.py``

The gallery never imports the gateway or the processor: it learns about jobs from the
events queue (:mod:`videoforge.messages`).
"""
