"""The ``crowdquant`` command."""
