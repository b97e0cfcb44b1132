"""qasdk as an MCP server (the official ``mcp`` SDK), one module per job.

``tools``: the MCP server object and its handlers (the registry as tools, a call
as a durable direct task); ``http``: the streamable-HTTP mount at ``/mcp`` of
``qasdk serve``; ``stdio``: ``qasdk mcp``, the same server over stdin/stdout.
Imported only by the server: ``import qasdk`` never loads ``mcp``.
"""
