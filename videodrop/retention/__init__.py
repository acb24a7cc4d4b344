"""Retention and quotas: rules by origin and for the whole store (:mod:`.rules`, read from
``VIDEODROP_RETENTION_FILE``), the decision of what goes (:mod:`.plan`), and the pass that
removes it, one at a time across hosts (:mod:`.enforce`). docs/operations.md, "Retention
and quotas"."""
