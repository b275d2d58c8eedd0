"""The read-only web server (`trialwatch serve`): routes → `watcher.views` → templates.

Starlette (ASGI) served by uvicorn, both in the `[web]` extra; imported only by the `serve`
command. Routes are thin: they parse the query, call `watcher.views`, and render; no query logic
of their own. `security.py` refuses every method but GET and HEAD and sets the headers; `api.py` is
the JSON interface and its OpenAPI description.
"""
