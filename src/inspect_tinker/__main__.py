import sys

from inspect_tinker.cli import main

sys.exit(main())
