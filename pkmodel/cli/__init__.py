"""The ``pkmodel`` command line."""
