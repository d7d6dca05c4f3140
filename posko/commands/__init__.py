"""One module per family of `posko` commands; each has `register(commands)`, which adds its
parsers and sets `handler(config, args) -> exit status` on them."""
