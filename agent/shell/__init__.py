"""The agent's shell: files, terminals, the network. Translates core errors into user-facing messages."""
