"""The Gallery service: listing, search, metadata, uploads, playback URLs and views.

One file per concern:

- ``models.py`` tables; ``schemas.py`` wire format; ``access.py`` who may see/change what
- ``service.py`` one video's rules (read, import, edit, delete); ``search.py`` listings
- ``uploads.py`` + ``sniff.py`` presigned uploads and confirm; ``sweep.py`` their clean-up
- ``playback.py`` stream URLs and signed HLS playlists; ``views.py`` view counting
- ``events.py`` the job-events consumer; ``api.py`` routes; ``app.py`` the app; ``main.py``

The gallery never imports the gateway or the processor: it learns about jobs from the
events queue (:mod:`videoforge.messages`).
"""
