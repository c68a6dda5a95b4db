"""Thin gRPC adapters of the payouts service: proto in, handler call, proto out."""
