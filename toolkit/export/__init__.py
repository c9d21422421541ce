"""Training-data export, merge and dataset report over Ground Truth output manifests.

Library entry points: `export()`, `merge()`, `report()`; the CLI (`gtkit export|merge|report`)
is a thin wrapper. See docs/export.md.
"""

from toolkit.export.exporter import EmptyExportError, ExportOptions, export
from toolkit.export.formats import BatchQuotas, ExportError
from toolkit.export.merge import merge
from toolkit.export.presets import PresetError, builtin_preset_names, load_preset
from toolkit.export.reader import ManifestReader
from toolkit.export.report import report
from toolkit.export.summary import RunSummary

__all__ = ["BatchQuotas", "EmptyExportError", "ExportError", "ExportOptions", "ManifestReader", "PresetError",
           "RunSummary", "builtin_preset_names", "export", "load_preset", "merge", "report"]
