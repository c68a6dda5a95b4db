"""gRPC plumbing shared by every service: server bootstrap, interceptors, status mapping, clients."""
