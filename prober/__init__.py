"""The prober worker: consume, claim, run ffprobe, map its JSON to metadata, record it."""
