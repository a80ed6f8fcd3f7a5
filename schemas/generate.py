"""Write the JSON Schema files under ``schemas/json``: ``python -m schemas.generate``."""

import json
from pathlib import Path
from typing import Any

from schemas.catalog import PUBLISHED_SCHEMAS

SCHEMA_DIR = Path(__file__).parent / "json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render(file_name: str) -> str:
    model, mode = PUBLISHED_SCHEMAS[file_name]
    document: dict[str, Any] = {"$schema": _DIALECT, "$id": file_name}
    document.update(model.model_json_schema(mode=mode))
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for file_name in PUBLISHED_SCHEMAS:
        (SCHEMA_DIR / file_name).write_text(render(file_name), encoding="utf-8")
        print(f"wrote schemas/json/{file_name}")


if __name__ == "__main__":
    main()
