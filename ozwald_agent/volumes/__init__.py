"""Encrypted volumes (docs/volumes.md): backends, mounts, versions, admission, RPCs.

The ciphertext of a volume lives under the agent's state directory; its plaintext exists
only as a FUSE mount under the agent's runtime directory, made just before a container
that uses it is created and removed after the last such container is removed. The
container bind-mounts the plaintext directory; keys come from the vault and travel to
the backend on a pipe, never in arguments, files, logs or specs.
"""
