"""The ``orchestrator`` command: ``main.py`` holds the root group and ``main(argv) -> int``;
one module per command group, each imported when its command runs."""
