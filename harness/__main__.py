"""`python -m harness` = `simcity`."""

from harness.cli import main

raise SystemExit(main())
