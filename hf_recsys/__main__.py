"""`python -m hf_recsys <command>`: the same as the `hf-recsys` command."""

import sys

from .cli import main

sys.exit(main())
