"""`arsync serve`: the HTTP face (portal API, accounting webhooks, health and metrics).

`sync.http.app:create_app` builds the ASGI application for uvicorn or any ASGI server.
"""
