"""Sub-commands of the ``glocal`` command line, one module each (see ``glocal.cli``)."""
