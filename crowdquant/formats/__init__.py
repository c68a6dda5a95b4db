"""The tournament's public formats: round files, prediction files, receipts. The participant client and
the services both read and write them; nothing here imports a service."""
