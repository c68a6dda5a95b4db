"""The public HTTP gateway: an anonymous, read-only JSON API and web pages over the leaderboard.

Its own process (Starlette on uvicorn), a gRPC client of the leaderboard only; it holds no secret.
"""
