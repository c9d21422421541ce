"""CloudFormation stacks: create or update with readable progress, delete, and clear failures.

Progress is the stack's own event stream, printed as it happens. When an operation fails the
error names the resource that failed first and CloudFormation's reason, not only the final
`ROLLBACK_COMPLETE`: the first failure is the cause, the rest are usually cancellations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from toolkit.errors import GtkitError
from toolkit.resources import resource_dir

Report = Callable[[str], None]

TEMPLATE_DIR_ENV = "GTKIT_CLOUDFORMATION_DIR"
SUCCESS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"})
# A stack whose first create failed can only be deleted.
DEAD = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"})
CANCELLED_MARKERS = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")
DEFAULT_TIMEOUT = 90 * 60  # a CloudFront distribution alone can take 15+ minutes


def template_dir() -> Path:
    """Where the templates live: `$GTKIT_CLOUDFORMATION_DIR`, else `cloudformation/` of the source tree."""
    env = os.environ.get(TEMPLATE_DIR_ENV)
    if env:
        return Path(env)
    return resource_dir("cloudformation")


def template_body(name: str) -> str:
    path = template_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"CloudFormation template {path} not found (set {TEMPLATE_DIR_ENV})")
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class StackFailure:
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) {self.status}: {self.reason}"


class StackError(GtkitError, RuntimeError):
    """A stack operation that did not succeed; `failures` lists failing resources, cause first.
    `action` (deploy, delete) leads the message: "deploy failed: stack X: ROLLBACK_COMPLETE"."""

    def __init__(self, stack_name: str, status: str, failures: list[StackFailure], reason: str | None = None,
                 action: str | None = None):
        self.stack_name = stack_name
        self.status = status
        self.failures = failures
        self.action = action
        lines = [(f"{action} failed: " if action else "") + f"stack {stack_name}: {status}"
                 + (f" ({reason})" if reason else "")]
        if failures:
            lines.append(f"failing resource: {failures[0]}")
            lines.extend(f"  also: {f}" for f in failures[1:4])
        super().__init__("\n".join(lines))


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(exc)


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """The stack's description, or None when there is no such (live) stack."""
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    return stacks[0] if stacks else None


def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def parameters_of(stack: Mapping[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def _recent_events(cfn: Any, stack_id: str) -> list[dict[str, Any]]:
    """The latest page of events, newest first."""
    return cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])


def format_event(event: Mapping[str, Any]) -> str:
    when = event.get("Timestamp")
    stamp = when.strftime("%H:%M:%S") if hasattr(when, "strftime") else str(when or "")
    status, kind = event.get("ResourceStatus", ""), event.get("ResourceType", "")
    line = f"{stamp}  {status:<28} {kind:<40} {event.get('LogicalResourceId', '')}"
    reason = event.get("ResourceStatusReason")
    if reason and event.get("ResourceStatus", "").endswith("FAILED"):
        line += f"  {reason}"
    return line


def failures_in(events: list[Mapping[str, Any]]) -> list[StackFailure]:
    """Failed resources of `events` (oldest first), causes before cancellations."""
    found: list[StackFailure] = []
    for event in events:
        status = event.get("ResourceStatus", "")
        if not status.endswith("_FAILED"):
            continue
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("PhysicalResourceId") == event.get(
            "StackId"
        ):
            continue  # the stack's own status line, not a resource
        found.append(StackFailure(event.get("LogicalResourceId", "?"), event.get("ResourceType", "?"), status,
                                  event.get("ResourceStatusReason", "")))
    causes = [f for f in found if not f.reason.startswith(CANCELLED_MARKERS)]
    return causes + [f for f in found if f not in causes]


def wait_for_stack(
    cfn: Any,
    stack_id: str,
    *,
    seen: set[str],
    report: Report,
    poll_seconds: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    action: str | None = None,
) -> dict[str, Any]:
    """Poll until the stack leaves *_IN_PROGRESS, printing new events; returns the final description.

    Raises StackError (saying `action` failed) for any final state other than a *_COMPLETE success.
    """
    deadline = time.monotonic() + timeout
    new_events: list[dict[str, Any]] = []
    while True:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        fresh = [e for e in _recent_events(cfn, stack_id) if e["EventId"] not in seen]
        for event in reversed(fresh):  # oldest first
            seen.add(event["EventId"])
            new_events.append(event)
            report(format_event(event))
        if not status.endswith("_IN_PROGRESS"):
            if status in SUCCESS:
                return stack
            raise StackError(stack["StackName"], status, failures_in(new_events), stack.get("StackStatusReason"),
                             action=action)
        if time.monotonic() > deadline:
            raise StackError(stack["StackName"], status, failures_in(new_events), "timed out waiting", action=action)
        sleep(poll_seconds)


def _parameters(values: Mapping[str, str | None], previous: Collection[str] | None) -> list[dict[str, Any]]:
    """Parameters for create (`previous` None) or update (`previous`: the stack's current parameter keys).

    A None value keeps the previous value on update; a parameter the stack does not have yet (a newer
    template) cannot, and like every None on create it is left out, so the template default applies.
    """
    out = []
    for key, value in values.items():
        if value is None:
            if previous is not None and key in previous:
                out.append({"ParameterKey": key, "UsePreviousValue": True})
        else:
            out.append({"ParameterKey": key, "ParameterValue": value})
    return out


def deploy_stack(
    cfn: Any,
    name: str,
    body: str,
    parameters: Mapping[str, str | None],
    *,
    create_defaults: Mapping[str, str] | None = None,
    capabilities: list[str] | None = None,
    tags: Mapping[str, str] | None = None,
    report: Report = lambda _m: None,
    poll_seconds: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Create the stack, or update it if it exists; wait; return the final stack description.

    `parameters` values of None keep the previous value on update, and take `create_defaults` (else
    the template default) on create. A stack left in ROLLBACK_COMPLETE by a failed first create is
    deleted and created again.
    """
    existing = describe_stack(cfn, name)
    if existing and existing["StackStatus"] in DEAD:
        report(f"stack {name} is {existing['StackStatus']} after an earlier failure: deleting it first")
        delete_stack(cfn, name, report=report, poll_seconds=poll_seconds, timeout=timeout, sleep=sleep)
        existing = None
    if existing and existing["StackStatus"].endswith("_IN_PROGRESS"):
        raise StackError(name, existing["StackStatus"], [], "another operation is in progress; wait and retry",
                         action="deploy")

    common: dict[str, Any] = {
        "StackName": name,
        "TemplateBody": body,
        "Capabilities": capabilities or [],
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if existing is None:
        defaults = create_defaults or {}
        defaulted = [k for k, v in parameters.items() if v is None and k in defaults]
        parameters = {k: defaults.get(k) if v is None else v for k, v in parameters.items()}
        if defaulted:
            report(f"stack {name}: default value for {', '.join(defaulted)}")
        report(f"creating stack {name}")
        stack_id = cfn.create_stack(**common, Parameters=_parameters(parameters, None))["StackId"]
        seen: set[str] = set()
    else:
        stack_id = existing["StackId"]
        seen = {e["EventId"] for e in _recent_events(cfn, stack_id)}
        report(f"updating stack {name}")
        try:
            cfn.update_stack(**common, Parameters=_parameters(parameters, set(parameters_of(existing))))
        except ClientError as exc:
            if "No updates are to be performed" in str(exc):
                report(f"stack {name}: no changes")
                return existing
            raise
    stack = wait_for_stack(cfn, stack_id, seen=seen, report=report, poll_seconds=poll_seconds, timeout=timeout,
                           sleep=sleep, action="deploy")
    report(f"stack {name}: {stack['StackStatus']}")
    return stack


def delete_stack(
    cfn: Any,
    name: str,
    *,
    report: Report = lambda _m: None,
    poll_seconds: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Delete the stack and wait. False if there was no such stack."""
    existing = describe_stack(cfn, name)
    if existing is None:
        report(f"stack {name}: not found, nothing to delete")
        return False
    stack_id = existing["StackId"]
    seen = {e["EventId"] for e in _recent_events(cfn, stack_id)}
    report(f"deleting stack {name}")
    cfn.delete_stack(StackName=stack_id)
    wait_for_stack(cfn, stack_id, seen=seen, report=report, poll_seconds=poll_seconds, timeout=timeout, sleep=sleep,
                   action="delete")
    report(f"stack {name}: DELETE_COMPLETE")
    return True
