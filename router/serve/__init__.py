"""The HTTP face and what runs beside it: the Starlette app, edge checks, pages, settings from the
environment, rule reloading (directory or bundle URL) and `upstream`, the one module that opens connections.

May import `router.decision`; never `router.policy` or the command line.
"""
