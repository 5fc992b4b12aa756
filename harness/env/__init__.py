"""Interactive environments: a mesh that keeps running between commands (``mesh-harness up ... down``).

``up`` starts a detached daemon (``daemon.py``) that owns a ``LocalMesh`` and serves a small JSON
API on 127.0.0.1, guarded by a token kept in a per-user state file (``state.py``). Every other
command reads that file, checks the daemon is alive, and calls the API (``client.py``);
``commands.py`` implements the commands and ``render.py``/``routes.py`` print what comes back.
"""
