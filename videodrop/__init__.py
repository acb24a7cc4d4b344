"""videodrop: drop a video into a folder, get unguessable URLs for it."""

__version__ = "0.1.0"
