"""The web console at /console: server-rendered pages for auditors, compliance officers and
operators over what the ledger recorded (audit log and hash chain, plans and their DAGs,
sessions, the registry, privacy), with every action sent as a command through the same
gateway as MCP calls. Owns its routes, templates, static assets and its cookie sign-in;
reads through ports that wiring fills (it never imports the event store or the workers).
"""
