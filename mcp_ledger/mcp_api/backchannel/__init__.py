"""The API side of the back channel: upstream requests to the agent, and the agent's answers."""
