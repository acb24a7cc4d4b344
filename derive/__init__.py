"""The derive role: posters, storyboards and scenes of ready videos, made by ffmpeg at low
priority from the ``<prefix>.derive`` queue (DESIGN.md; docs/derivatives.md)."""
