"""Every benchmark of the project (``avatar bench ...``) and the standalone GPU check."""
