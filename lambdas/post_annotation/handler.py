"""Ground Truth post-annotation (annotation consolidation) Lambda, handler `handler.lambda_handler`.

A shim: the code is `toolkit.labeling.post_annotation`, which the local job, `gtkit serve` and the
tests import as a module. The zip carries this file at its root and the toolkit modules it reaches.
"""

from typing import Any

from toolkit.labeling import post_annotation
from toolkit.labeling.post_annotation import handle, label_schema, logger, s3_reader


def lambda_handler(event: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
    return post_annotation.lambda_handler(event, context)


__all__ = ["handle", "label_schema", "lambda_handler", "logger", "s3_reader"]
