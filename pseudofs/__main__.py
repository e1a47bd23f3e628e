import sys

from pseudofs.cli import main

sys.exit(main())
