"""The guard's screen: a Flask app that `posko run` serves with waitress.

`web.app.create_app(config, post)` builds it; `web.server.WebServer` serves it; settings
changed on the page are kept by `web.overrides` and applied over the configuration file.
"""
