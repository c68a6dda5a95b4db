"""The participants' Python client: download a round's data, upload predictions, verify receipts.

from crowdquant.client import Client
client = Client("127.0.0.1:50051")            # key from CROWDQUANT_API_KEY
client.download_data("my-tournament", "data/")
receipt = client.submit("my-tournament", "preds.csv", model="my-model")
"""

from crowdquant.client.client import Client, DownloadedRound, Receipt

__all__ = ["Client", "DownloadedRound", "Receipt"]
