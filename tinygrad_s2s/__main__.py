"""`python -m tinygrad_s2s` runs the `tinygrad-s2s` command."""
import sys

from .cli import main

sys.exit(main())
