"""``python -m synset_builder.cli``: the ``synset`` command without its script."""

import sys

from synset_builder.cli import main

sys.exit(main())
