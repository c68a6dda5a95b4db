"""crowdquant: a crowd-sourced prediction tournament's back office.

This package holds the command-line interface, the participants' Python client and the generated
gRPC stubs (``crowdquant.<service>.v1``, produced from ``proto/`` by ``make proto``).
"""

__version__ = "0.1.0"
