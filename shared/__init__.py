"""Runtime every crowdquant service uses: config, logging, database, gRPC plumbing, auth and money.

No domain logic of any one service lives here.
"""
