"""What a worker sees: the task input (Liquid `task.input`), the rendered template, Ground Truth's Liquid.

- `task_input`: one data object (manifest line) -> the task input; the pre-annotation Lambda's core.
- `template`: the worker task template (Jinja2 -> the one HTML file Ground Truth is given).
- `liquid`: Ground Truth's Liquid filters (`grant_read_access`, `to_json`, ...) for local rendering.

Nothing is imported here: the pre-annotation Lambda's zip carries `task_input` alone (no Jinja2).
"""
