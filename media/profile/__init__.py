"""The profile contract both peers read: persona schema, manifest, face geometry."""
