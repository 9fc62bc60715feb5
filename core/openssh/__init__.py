"""OpenSSH's own files, read with OpenSSH's semantics: client configs."""
