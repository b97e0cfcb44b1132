"""The qasdk task server."""
