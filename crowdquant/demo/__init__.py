"""``crowdquant demo``: a whole tournament on this machine, from one command."""
