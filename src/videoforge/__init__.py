"""VideoForge: a self-hostable video platform (gallery, video processor, API gateway)."""

__version__ = "0.1.0"
