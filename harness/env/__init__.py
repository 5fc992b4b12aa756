"""Interactive environments: a mesh that keeps running between commands (``mesh-harness up ... down``).

``up`` starts a detached daemon (``daemon.py``) that owns a ``LocalMesh`` (``service.py`` holds
what it can do) and serves a small
JSON API on 127.0.0.1, guarded by a token kept in a per-user state file (``state.py``). Every
other command reads that file, checks the daemon is alive, and calls the API (``client.py``,
``wire.py`` for the JSON). ``commands.py`` implements the commands; ``manifests.py`` and
``services.py`` parse their input; ``render.py``, ``routes.py`` and ``sync.py`` turn answers into
tables. The pure modules (wire, manifests, services, routes, sync, render) do no I/O.
"""
