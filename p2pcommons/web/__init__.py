"""The local dashboard and its JSON API, served by the daemon on 127.0.0.1 (docs/api.md).

``auth`` (the token and the guard in front of every request) and ``events`` (the change
counter behind server-sent events) import nothing of the web stack, so ``p2pc ui`` and the
daemon can use them cheaply; ``app`` loads Starlette and Hypercorn and is imported only by a
daemon whose ``[ui] enabled`` is true.
"""
