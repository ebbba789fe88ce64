import sys

from mbnas.cli import main

sys.exit(main())
