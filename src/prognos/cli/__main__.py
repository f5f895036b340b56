"""``python -m prognos.cli`` runs the ``prognos`` command."""

from prognos.cli import main

main()
