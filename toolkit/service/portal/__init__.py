"""Local worker portal: the worker task template served on 127.0.0.1 with Ground Truth emulated.

`create_app(source)` builds the Flask app for any `TaskSource`; `PreviewSource` previews a
manifest (`gtkit preview`), the local labeling job brings its own source.
"""

from toolkit.contract.worker_response import gt_time
from toolkit.service.portal.app import PortalServer, create_app, run_portal
from toolkit.service.portal.preview import ManifestError, PreviewSource
from toolkit.service.portal.tasks import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_OPEN,
    SubmissionRejected,
    TaskSource,
    TaskSummary,
)

__all__ = [
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_OPEN",
    "ManifestError",
    "PortalServer",
    "PreviewSource",
    "SubmissionRejected",
    "TaskSource",
    "TaskSummary",
    "create_app",
    "gt_time",
    "run_portal",
]
