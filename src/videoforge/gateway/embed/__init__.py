"""Embeds and link previews: the frameable player at ``/embed/{id}``, oEmbed at
``/services/oembed`` and the server-rendered meta tags of watch pages."""
