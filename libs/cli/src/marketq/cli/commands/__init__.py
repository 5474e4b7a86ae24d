"""The ``marketq`` sub-commands, one module per group."""
