"""Every message that crosses a boundary of the app, as pydantic models.

The JSON Schema files under ``schemas/json`` are generated from these models
(``python -m schemas.generate``) and a test keeps them in sync.
"""
