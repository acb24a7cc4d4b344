"""videodrop: drop a video into a folder, get unguessable links to it."""

__version__ = "0.1.0"
