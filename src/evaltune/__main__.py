import sys

from evaltune.cli import main

sys.exit(main())
