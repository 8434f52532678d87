"""avatar: the command line and the all-in-one demo; the only package that composes both peers."""
