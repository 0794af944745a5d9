#!/usr/bin/env python
"""Django's manage.py, for developers used to it; ``civicgrid`` is the same command."""

from civicgrid.cli import main

if __name__ == "__main__":
    main()
