"""Registered activity names, shared by the activities and the orchestrators that call them."""

from typing import Final

SEND_START_MESSAGE: Final = "SendStartMessage"
RECORD_JOB_STATUS: Final = "RecordJobStatus"
CLEAR_USER_CACHE: Final = "ClearUserCache"
DEACTIVATE_USER_DATA: Final = "DeactivateUserData"
RUN_SEARCH_INDEXER: Final = "RunSearchIndexer"
