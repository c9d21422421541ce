"""gtkit: audio and video segmentation labeling on Amazon SageMaker Ground Truth.

Library first: every CLI command is a thin wrapper over a function in this package.
"""

__version__ = "0.1.0"
