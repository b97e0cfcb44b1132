"""Tools that live on MCP servers: templates for their secrets, and the client.

:mod:`qasdk.remote.templates` expands ``${VAR}`` in headers and env only when a
connection is made; :mod:`qasdk.remote.client` opens an MCP client (the
``mcp`` package, the ``qasdk[mcp]`` extra) for an endpoint and turns what a
``tools/call`` answers into a result. Nothing here imports ``mcp`` until used.
"""
