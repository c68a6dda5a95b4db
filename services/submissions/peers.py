"""Tell scoring about each accepted upload, so its Ladder public score appears within a second.

The notice names the stored upload (model, version, content hash) and nothing more: scoring reads
the values from this service and checks the hash itself, so no caller can hand it scores.

Fire-and-forget after the upload's transaction commits: an upload never waits on scoring, and a
failed notification only delays the public score (scoring's ScoreValidation is idempotent per
version, so a later retry or a re-run is harmless).
"""

from __future__ import annotations

import asyncio

from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.config import CommonSettings
from shared.logging import get_logger
from shared.rpc.client import call_with_retry, open_channel

log = get_logger("crowdquant.submissions.notify")
MAX_PENDING = 256


class ScoringNotifier:
    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self._channel = None
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(self, response: pb.UploadPredictionsResponse) -> None:
        if len(self._pending) >= MAX_PENDING:
            log.warning("scoring notifications backlogged; skipping one", model_id=response.submission.model_id)
            return
        task = asyncio.create_task(self._send(response.submission))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, submission: pb.Submission) -> None:
        if self._channel is None:
            self._channel = open_channel(self.settings.scoring_addr)
        key = self.settings.service_api_key.get_secret_value() if self.settings.service_api_key else None
        request = sc_pb.ScoreValidationRequest(
            request_id=f"validation:{submission.submission_id}",
            round=submission.round,
            model_id=submission.model_id,
            version=submission.version,
            content_sha256=submission.content_sha256,
        )
        try:
            await call_with_retry(
                sc_grpc.ScoringServiceStub(self._channel).ScoreValidation,
                request,
                api_key=key,
                deadline=10.0,
                attempts=3,
            )
        except Exception as exc:  # the upload stands; its public score waits for the next upload or re-run
            log.warning(
                "scoring notification failed",
                model_id=submission.model_id,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._channel is not None:
            await self._channel.close()
