"""Local host for the function app: ``python -m devhost`` runs ``function_app.py`` in-process.

It stands in for Azure Functions Core Tools during development: queue triggers, HTTP routes and
Durable Functions (through the real ``azure-functions-durable`` SDK) with state kept on disk.
"""
