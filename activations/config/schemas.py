"""JSON schemas of every configuration file, for editors (completion and checks while typing).

Written from the same typed models the pipeline validates with, so they cannot say otherwise:
`python -m activations.config.schemas` rewrites `schemas/`, and a test fails when they are stale.
In an editor with the YAML language server, the first line of each file points at its schema:

    # yaml-language-server: $schema=schemas/channels.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from activations import settings


def destinations_file() -> type[BaseModel]:
    from activations.destinations.config import REGISTRY, entry_model

    entry = Annotated[Union[tuple(entry_model(t) for t in sorted(REGISTRY))], Field(discriminator="type")]  # noqa: UP007
    return create_model("DestinationsFile", __config__=ConfigDict(extra="forbid"),
                        __doc__="destinations.yml: destination instances by name; secrets come from the environment",
                        destinations=(dict[str, entry], ...))


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON schema, for every configuration file and dbt YAML declaration."""
    from activations.listening.config import ListeningFile
    from activations.manifest import SyncDeclaration
    from activations.messaging.channels import ChannelsFile
    from activations.messaging.policy import MessagingFile, MessagingPolicy
    from activations.serve.keys import KeysFile

    models: dict[str, type[BaseModel]] = {
        "destinations": destinations_file(), "channels": ChannelsFile, "messaging": MessagingFile,
        "serve_keys": KeysFile, "listening": ListeningFile,
        "meta.activations": SyncDeclaration, "meta.messaging": MessagingPolicy,
    }
    found = {}
    for name, model in models.items():
        schema = model.model_json_schema(by_alias=True)
        if name == "meta.activations":  # a list of syncs; each may add its destination type's own options
            schema = {"$defs": schema.pop("$defs", {}), "type": "array", "items": {**schema,
                                                                                   "additionalProperties": True}}
        found[f"{name}.schema.json"] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return found


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else settings.project_root() / "schemas"):
        print(path)
