"""Ground Truth pre-annotation Lambda, handler `handler.lambda_handler`.

A shim: the code is `toolkit.labeling.pre_annotation`, which the local job, `gtkit serve` and the
tests import as a module. The zip carries this file at its root and the toolkit modules it reaches.
"""

from typing import Any

from toolkit.labeling import pre_annotation
from toolkit.labeling.pre_annotation import handle, logger


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return pre_annotation.lambda_handler(event, context)


__all__ = ["handle", "lambda_handler", "logger"]
