"""The `posko` command and the runtime that assembles a post (or a district) from its parts.

This is the only package that knows every other one: `sensors` <- `edge` <- {`web`, `sync`}
<- `district` <- `posko`.
"""
