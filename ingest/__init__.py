"""The watch-folder daemon: watchdog observer, settle tracking, rescans, confirmed publisher."""
