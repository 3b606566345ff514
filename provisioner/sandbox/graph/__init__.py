"""A local emulator of the Microsoft Graph v1.0 calls the service makes (users, groups, membership,
sessions, delta, JSON batching, throttling). Start with :class:`.app.GraphSandbox`; run it
standalone with :func:`.serve.serve`.
"""
