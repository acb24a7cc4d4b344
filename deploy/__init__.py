"""What an operator needs beyond systemd; ``deploy.devstack`` is importable from the
checkout's root."""
