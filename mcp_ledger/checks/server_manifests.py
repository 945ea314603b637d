"""MCPServer manifests (the custom resource in deploy/crds/mcpserver.yaml) to register_server
arguments.

Same YAML bounds as MCPTool manifests (yaml_documents.py); MCPTool documents in the same
stream are left to checks/manifests.py. The camelCase spec maps onto UpstreamServer and is
validated here, so a bad entry is reported before anything is sent. A manifest never holds
a secret: `auth.secretFromEnv` names an environment variable of the process applying it.
A stdio `command` is refused: it is operator configuration, not a resource.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mcp_ledger.checks.documents import DocumentError
from mcp_ledger.checks.yaml_documents import load_yaml_all
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.upstreams.model import UpstreamServer

API_VERSION = "mcp-ledger.io/v1alpha1"
KIND = "MCPServer"
MAX_MANIFEST_BYTES = 1024 * 1024
_FIELDS = {
    "minimumRole": "minimum_role",
    "toolRoles": "tool_roles",
    "dataRecipient": "data_recipient",
    "timeoutSeconds": "timeout_s",
    "toolTimeouts": "tool_timeouts",
    "taskSupport": "task_support",
}
_AUTH_FIELDS = {"tokenUrl": "token_url", "clientId": "client_id"}


def _arguments(document: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """register_server arguments of one MCPServer resource.

    Raises:
        RegistrationError: invalid, a stdio command, or a named secret variable unset.
    """
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise RegistrationError(["spec: an object is required"])
    raw_metadata = document.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    if "command" in spec:
        raise RegistrationError(["spec.command: stdio servers are operator configuration, not a resource"])
    arguments: dict[str, Any] = {_FIELDS.get(str(k), str(k)): v for k, v in spec.items() if k != "auth"}
    arguments.setdefault("name", metadata.get("name"))
    auth = spec.get("auth")
    if isinstance(auth, dict):
        auth = {_AUTH_FIELDS.get(k, k): v for k, v in auth.items()}
        variable = auth.pop("secretFromEnv", None)
        if variable is not None:
            if not env.get(str(variable)):
                raise RegistrationError([f"spec.auth.secretFromEnv: {variable} is not set"])
            auth["secret"] = env[str(variable)]
        arguments["auth"] = auth
    checked = {k: v for k, v in arguments.items() if k not in {"auth", "scope"}}
    checked["auth"] = {k: v for k, v in (arguments.get("auth") or {}).items() if k != "secret"}
    try:
        UpstreamServer.model_validate(checked)
    except ValidationError as error:
        raise RegistrationError(
            [f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        ) from None
    return arguments


def load_server_manifests(text: str, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """register_server arguments of every MCPServer resource in a YAML stream.

    Raises:
        RegistrationError: unreadable YAML or an invalid MCPServer (every problem, by document).
    """
    try:
        documents = load_yaml_all(text, max_bytes=MAX_MANIFEST_BYTES, what="the manifest")
    except DocumentError as error:
        raise RegistrationError([str(error)]) from None
    found: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, document in enumerate(d for d in documents if d is not None):
        if not isinstance(document, dict) or document.get("kind") != KIND:
            continue
        if document.get("apiVersion") != API_VERSION:
            problems.append(f"document #{index}: apiVersion must be {API_VERSION}")
            continue
        try:
            found.append(_arguments(document, os.environ if env is None else env))
        except RegistrationError as error:
            problems += [f"document #{index}: {problem}" for problem in error.problems]
    if problems:
        raise RegistrationError(problems)
    return found
