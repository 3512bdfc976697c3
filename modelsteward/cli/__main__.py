"""``python -m modelsteward.cli`` runs the ``steward`` command."""

from modelsteward.cli.main import run

run()
